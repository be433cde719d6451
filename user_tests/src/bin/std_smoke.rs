//! The acceptance program: ordinary Rust std code (collections, files, processes,
//! threads, environment) working end to end on the kernel.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use user_tests::{child_args, exe_path, run_tests, tests, TempDir, CHILD_MARKER};

fn main() {
    if let Some(args) = child_args() {
        std::process::exit(child_main(&args));
    }
    run_tests(
        "std_smoke",
        tests![
            vec_and_hashmap_work,
            strings_format_and_parse,
            fs_write_then_read_back,
            fs_directories_list_and_remove,
            command_runs_this_binary_and_captures_output_and_status,
            command_pipes_stdin_to_child,
            command_passes_environment,
            threads_send_results_over_a_channel,
            env_args_start_with_the_program,
            instant_measures_a_sleep,
        ],
    )
}

/// Child mode, run through std::process::Command by the tests below.
fn child_main(args: &[String]) -> i32 {
    match args[0].as_str() {
        "echo" => {
            println!("hello from child: {}", args[1..].join(" "));
            7
        }
        "upper" => {
            let mut s = String::new();
            std::io::stdin().read_to_string(&mut s).unwrap();
            print!("{}", s.to_uppercase());
            0
        }
        "env" => {
            print!("{}", std::env::var("UT_VAR").unwrap_or_default());
            0
        }
        _ => 100,
    }
}

fn vec_and_hashmap_work() {
    let v: Vec<u64> = (1..=1000).collect();
    assert_eq!(v.iter().sum::<u64>(), 500_500);
    let mut words = HashMap::new();
    for w in "the cat and the dog and the bird".split(' ') {
        *words.entry(w).or_insert(0) += 1;
    }
    assert_eq!(words["the"], 3);
    assert_eq!(words["and"], 2);
    assert_eq!(words.len(), 5);
    let mut big = vec![0u8; 8 << 20]; // large enough for mmap-backed allocation
    big[8 << 19] = 1;
    big.resize(16 << 20, 2);
    assert_eq!((big[8 << 19], big[(16 << 20) - 1]), (1, 2));
}

fn strings_format_and_parse() {
    let s = format!("{:>6}|{:.3}|{:#x}", "ab", 1.23456, 255);
    assert_eq!(s, "    ab|1.235|0xff");
    assert_eq!("12345".parse::<u32>().unwrap() + 1, 12346);
    assert_eq!("1.5e3".parse::<f64>().unwrap(), 1500.0);
}

fn fs_write_then_read_back() {
    let dir = TempDir::new();
    let path = dir.path.join("hello.txt");
    std::fs::write(&path, "hello, file\n").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello, file\n");
    let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    writeln!(f, "second line").unwrap();
    drop(f);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello, file\nsecond line\n");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 24);
}

fn fs_directories_list_and_remove() {
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.path.join("a/b/c")).unwrap();
    std::fs::write(dir.path.join("a/one"), "1").unwrap();
    std::fs::write(dir.path.join("a/two"), "2").unwrap();
    let mut names: Vec<String> =
        std::fs::read_dir(dir.path.join("a")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["b", "one", "two"]);
    std::fs::rename(dir.path.join("a/one"), dir.path.join("a/b/c/one")).unwrap();
    assert_eq!(std::fs::read_to_string(dir.path.join("a/b/c/one")).unwrap(), "1");
    std::fs::remove_dir_all(dir.path.join("a")).unwrap();
    assert!(!dir.path.join("a").exists());
}

fn self_command(args: &[&str]) -> Command {
    let mut c = Command::new(exe_path().to_str().unwrap());
    c.arg(CHILD_MARKER).args(args);
    c
}

fn command_runs_this_binary_and_captures_output_and_status() {
    let out = self_command(&["echo", "a", "b"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from child: a b\n");
    assert_eq!(out.status.code(), Some(7));
}

fn command_pipes_stdin_to_child() {
    let mut child = self_command(&["upper"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"shout this").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, b"SHOUT THIS");
}

fn command_passes_environment() {
    let out = self_command(&["env"]).env("UT_VAR", "from parent").output().unwrap();
    assert_eq!(out.stdout, b"from parent");
}

fn threads_send_results_over_a_channel() {
    let (tx, rx) = mpsc::channel();
    for i in 0..4u64 {
        let tx = tx.clone();
        std::thread::spawn(move || tx.send(i * 10).unwrap());
    }
    drop(tx);
    let mut got: Vec<u64> = rx.iter().collect();
    got.sort();
    assert_eq!(got, [0, 10, 20, 30]);
}

fn env_args_start_with_the_program() {
    let args: Vec<String> = std::env::args().collect();
    assert!(!args[0].is_empty());
    assert!(args[0].ends_with("std_smoke"), "argv[0] = {}", args[0]);
}

fn instant_measures_a_sleep() {
    let t = std::time::Instant::now();
    std::thread::sleep(std::time::Duration::from_millis(10));
    assert!(t.elapsed() >= std::time::Duration::from_millis(10));
}
