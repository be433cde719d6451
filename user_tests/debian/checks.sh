#!/bin/bash
# Debian's own programs on the Debian root (`cargo xtask test`, see qemu/src/debian.rs):
# bash, coreutils, util-linux, procps and Python 3, run the same way in our kernel and on
# Debian's Linux 6.1 in the same QEMU. Each check_* function is one test; it fails with a
# message through `fail`, or when a command it runs under `set -e` fails. Prints a line per
# test in the user-test harness format, then exits 0 if every test passed.
set -u
# Linux starts init with HOME and TERM only; programs that look themselves up (Python's
# sys.executable) need PATH in the environment, as a login shell has it.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

fail() {
    echo "$*" >&2
    exit 1
}

# expect WHAT GOT WANT
expect() {
    [ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}

check_bash_pipes_redirections_subshells_and_substitution() {
    set -e
    expect pipe "$(printf 'b\nc\na\n' | sort | tr -d '\n')" abc
    local f=/tmp/debian-redirect
    echo one >"$f"
    echo two >>"$f"
    expect append "$(wc -l <"$f")" 2
    expect subshell "$(cd /tmp && pwd)" /tmp
    expect cwd-kept "$(pwd)" "$PWD"
    expect nested "$(echo "$(echo "$(echo deep)")")" deep
    expect heredoc "$(cat <<END
x $((6 * 7))
END
)" "x 42"
    expect stderr "$( (echo err >&2) 2>&1)" err
    expect exit-status "$(false || echo $?)" 1
    local n=0
    while read -r _; do n=$((n + 1)); done < <(seq 1 5)
    expect process-substitution "$n" 5
    rm "$f"
}

check_bash_background_jobs_and_wait() {
    set -e
    sleep 0.2 &
    local pid=$!
    kill -0 "$pid"
    wait "$pid"
    (exit 7) &
    wait $! || expect wait-status $? 7
}

check_coreutils_files() {
    set -e
    local d=/tmp/debian-files
    rm -rf "$d"
    mkdir -p "$d"
    printf 'hello\nworld\n' >"$d/a"
    cp "$d/a" "$d/b"
    expect cp "$(cat "$d/b")" "$(printf 'hello\nworld')"
    expect wc "$(wc -l -c <"$d/b" | tr -s ' ')" " 2 12"
    expect stat-size "$(stat -c %s "$d/a")" 12
    chmod 640 "$d/a"
    expect stat-mode "$(stat -c %a "$d/a")" 640
    expect ls-l "$(ls -l "$d/a" | cut -d ' ' -f 1)" "-rw-r-----"
    ln -s a "$d/link"
    expect readlink "$(readlink "$d/link")" a
    expect sort "$(printf '3\n1\n2\n' | sort -n | tr -d '\n')" 123
    expect ls "$(ls "$d" | tr '\n' ' ')" "a b link "
    rm -r "$d"
}

check_coreutils_ids_and_machine() {
    set -e
    expect id-u "$(id -u)" 0
    expect id-user "$(id -u user):$(id -g user)" 1000:1000
    expect nproc "$(nproc)" "$(grep -c '^processor' /proc/cpuinfo)"
    df / >/dev/null
    expect df-mount "$(df --output=target / | tail -n 1)" /
}

check_setpriv_runs_a_program_as_the_user() {
    set -e
    expect user "$(setpriv --reuid=user --regid=user --init-groups id -un)" user
    expect denied "$(setpriv --reuid=user --regid=user --init-groups cat /root/.none 2>&1 || true)" \
        "cat: /root/.none: Permission denied"
}

check_ipcmk_ipcs_ipcrm_on_a_segment() {
    set -e
    local out id line
    out=$(ipcmk -M 1048576)
    id=${out##* }
    line=$(ipcs -m | awk -v id="$id" '$2 == id')
    [ -n "$line" ] || fail "ipcs -m does not list segment $id: $(ipcs -m)"
    set -- $line
    expect size "$5" 1048576
    expect owner "$3" root
    expect nattch "$6" 0
    ipcrm -m "$id"
    [ -z "$(ipcs -m | awk -v id="$id" '$2 == id')" ] || fail "segment $id still listed after ipcrm"
}

check_ipcs_l_shows_the_limits() {
    set -e
    local l
    l=$(ipcs -l)
    expect shmmni "$(echo "$l" | awk -F' = ' '/max number of segments/ {print $2}')" "$(cat /proc/sys/kernel/shmmni)"
    expect msgmax "$(echo "$l" | awk -F' = ' '/max size of message/ {print $2}')" "$(cat /proc/sys/kernel/msgmax)"
    expect semmsl "$(echo "$l" | awk -F' = ' '/max semaphores per array/ {print $2}')" "$(awk '{print $1}' /proc/sys/kernel/sem)"
}

status_kb() {
    awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"
}

check_ps_lists_every_process_with_its_command() {
    set -e
    sleep 30 &
    local pid=$!
    sleep 0.2
    local line
    line=$(ps -eo pid,ppid,cmd | awk -v p="$pid" '$1 == p')
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    set -- $line
    expect ppid "$2" "$BASHPID"
    expect cmd "$3 $4" "sleep 30"
    expect "pid 1" "$(ps -o pid= -p 1 | tr -d ' ')" 1
}

check_ps_rss_and_vsz_match_proc_status() {
    set -e
    sleep 30 &
    local pid=$!
    sleep 0.2
    local rss vsz
    read -r rss vsz < <(ps -o rss=,vsz= -p "$pid")
    local want_rss want_vsz
    want_rss=$(status_kb "$pid" VmRSS)
    want_vsz=$(status_kb "$pid" VmSize)
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    expect rss "$rss" "$want_rss"
    expect vsz "$vsz" "$want_vsz"
}

check_free_shows_meminfo() {
    set -e
    expect total "$(free -k | awk '/^Mem:/ {print $2}')" "$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
    expect swap "$(free -k | awk '/^Swap:/ {print $2}')" "$(awk '/^SwapTotal:/ {print $2}' /proc/meminfo)"
}

check_pmap_totals_match_proc_status() {
    set -e
    sleep 30 &
    local pid=$!
    sleep 0.2
    local total
    total=$(pmap -x "$pid" | awk '/^total/ {print $3, $4}')
    # RSS from smaps: Linux 6.1's VmRSS may lag behind by its per-thread counter caches.
    local want="$(status_kb "$pid" VmSize) $(awk '$1 == "Rss:" {print $2}' "/proc/$pid/smaps_rollup")"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    expect "pmap total kB and RSS" "$total" "$want"
}

check_python_mmap_of_a_file() {
    set -e
    local out
    out=$(python3 - <<'END'
import mmap, os
path = "/tmp/debian-mmap"
with open(path, "wb") as f:
    f.write(b"a" * 8192)
with open(path, "r+b") as f:
    m = mmap.mmap(f.fileno(), 0)
    m[4096:4101] = b"hello"
    m.flush()
    assert m.find(b"hello") == 4096
    m.close()
with open(path, "rb") as f:
    data = f.read()
os.unlink(path)
print(len(data), data[4096:4101].decode(), data.count(b"a"))
END
)
    expect python-mmap "$out" "8192 hello 8187"
}

check_python_shared_memory_between_processes() {
    set -e
    local out
    out=$(python3 - <<'END'
import multiprocessing as mp
from multiprocessing import shared_memory

def child(name, i):
    shm = shared_memory.SharedMemory(name=name)
    shm.buf[i] = i + 1
    shm.close()

if __name__ == "__main__":
    mp.set_start_method("fork")
    shm = shared_memory.SharedMemory(create=True, size=4096)
    procs = [mp.Process(target=child, args=(shm.name, i)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    print(list(shm.buf[:4]), [p.exitcode for p in procs])
    shm.close()
    shm.unlink()
END
)
    expect shared-memory "$out" "[1, 2, 3, 4] [0, 0, 0, 0]"
}

# glibc reads the clock in the vDSO: with the [vvar] page made unreadable, a child's
# clock_gettime faults instead of making the system call (as on Linux), while the parent,
# whose page is intact, gets the time.
check_glibc_reads_the_clock_in_the_vdso() {
    set -e
    local out
    out=$(python3 - <<'END'
import ctypes, os, signal, time
libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
vvar = [l.split()[0] for l in open("/proc/self/maps") if l.rstrip().endswith("[vvar]")]
start, end = (int(x, 16) for x in vvar[0].split("-"))
pid = os.fork()
if pid == 0:
    if libc.mprotect(start, end - start, 0) != 0:
        os._exit(3)
    time.clock_gettime(time.CLOCK_MONOTONIC)
    os._exit(0)
_, status = os.waitpid(pid, 0)
t = time.clock_gettime(time.CLOCK_MONOTONIC)
print(len(vvar), os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSEGV, t > 0)
END
)
    expect vdso-clock "$out" "1 True True"
}

# N processes of one dynamic program share its text and libc's from the page cache: none of
# those pages is private to one process, and each process's proportional share (Pss) of a
# text mapping is a small part of its Rss (at most a quarter with N = 8: a page one process
# has touched and only some of the others have too still counts a larger share).
check_shared_library_text_is_shared_between_processes() {
    set -e
    local out
    out=$(python3 - <<'END'
import subprocess, time
N = 8
procs = [subprocess.Popen(["sleep", "30"]) for _ in range(N)]
def text_of(pid, name):
    fields, cur = {}, None
    for line in open(f"/proc/{pid}/smaps"):
        parts = line.split()
        if "-" in parts[0] and len(parts) >= 5:
            cur = parts[1] == "r-xp" and len(parts) >= 6 and parts[5].endswith(name)
            if cur:
                fields.setdefault("maps", 0)
                fields["maps"] += 1
        elif cur and parts[0].rstrip(":") in ("Rss", "Pss", "Private_Clean", "Private_Dirty", "Shared_Clean", "Shared_Dirty"):
            k = parts[0].rstrip(":")
            fields[k] = fields.get(k, 0) + int(parts[1])
    return fields
# A page only one process has touched counts as its private: wait until every sleep has
# reached its nanosleep (state S; nothing else blocks during its start). Even then 6.1
# showed one process with 8 kB of its 832 kB of libc text private, so a sixteenth (or
# 8 kB) may be.
def state(pid):
    return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
deadline = time.time() + 20
while time.time() < deadline and any(state(p.pid) != "S" for p in procs):
    time.sleep(0.1)
bad = []
for name in ("/libc.so.6", "/sleep"):
    for p in procs:
        f = text_of(p.pid, name)
        ok = (f.get("maps") == 1 and f["Rss"] > 0 and f["Pss"] * 4 <= f["Rss"]
              and f["Private_Clean"] + f["Private_Dirty"] <= max(8, f["Rss"] // 16)
              and f["Shared_Clean"] + f["Shared_Dirty"] + f["Private_Clean"] + f["Private_Dirty"] == f["Rss"])
        if not ok:
            bad.append((name, p.pid, f))
for p in procs:
    p.kill()
    p.wait()
print("shared" if not bad else f"not shared: {bad}")
END
)
    expect shared-text "$out" "shared"
}

# mkfifo(1) makes a FIFO; a writer and a reader in two processes meet through it.
check_mkfifo_connects_a_writer_and_a_reader() {
    set -e
    local d=/tmp/debian-fifo
    rm -rf "$d"
    mkdir "$d"
    mkfifo -m 0640 "$d/f"
    expect fifo-type "$(stat -c '%F %a' "$d/f")" "fifo 640"
    (printf 'one\ntwo\n' >"$d/f") &
    expect fifo-data "$(sort -r <"$d/f" | tr '\n' ' ')" "two one "
    wait
    rm -rf "$d"
}

# An interactive bash on a pseudo-terminal it controls, driven as a person would: a job
# in the background, ^Z, bg and SIGTTIN, TOSTOP and SIGTTOU, fg and ^C.
check_interactive_bash_job_control_on_a_pty() {
    set -e
    local out
    out=$(python3 - <<'END'
import fcntl, os, re, select, sys, termios, time

master, slave = os.openpty()
pid = os.fork()
if pid == 0:
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.close(master)
    os.close(slave)
    env = {"PATH": os.environ["PATH"], "TERM": "dumb", "PS1": "PROMPT> ", "HOME": "/tmp"}
    os.execve("/bin/bash", ["bash", "--norc", "--noprofile", "-i"], env)
os.close(slave)
seen = b""

def expect(pattern, what):
    global seen
    deadline = time.monotonic() + 20
    while True:
        m = re.search(pattern.encode(), seen)
        if m:
            seen = seen[m.end():]
            return m
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([master], [], [], left)[0]:
            sys.exit(f"{what}: no {pattern!r} in {seen[-300:]!r}")
        try:
            seen += os.read(master, 4096)
        except OSError:
            sys.exit(f"{what}: the terminal closed; seen {seen[-300:]!r}")

def send(text):
    # What bash has printed so far goes first (a job's notice may come before or after
    # the next command's output): each expect then looks only at what the text brings.
    global seen
    while select.select([master], [], [], 0.2)[0]:
        seen += os.read(master, 4096)
    seen = b""
    os.write(master, text.encode())

expect("PROMPT> ", "first prompt")
send("sleep 30 &\n")
expect(r"\[1\] \d+", "background job started")
expect("PROMPT> ", "prompt after &")
send("jobs\n")
expect(r"\[1\]\+\s+Running\s+sleep 30 &", "jobs lists it running")
send("kill -9 %1; wait\n")
expect("PROMPT> ", "prompt after kill")
send("cat\n")
time.sleep(0.3)
send("hello\n")
expect(r"hello\r\nhello\r\n", "cat echoes a line in the foreground")
send("\x1a")
expect(r"\[1\]\+\s+Stopped\s+cat", "^Z stops the foreground job")
expect("PROMPT> ", "prompt after ^Z")
send("bg\n")
expect(r"\[1\]\+ cat &", "bg continues it")
time.sleep(0.3)
send("jobs\n")
# Running after bg, stopped again: only the terminal's SIGTTIN stops it.
expect(r"\[1\]\+\s+Stopped\s+cat", "a background read brings SIGTTIN")
send("fg\n")
expect(r"fg\r\ncat\r\n", "fg names the job")
time.sleep(0.3)
send("\x03")
expect(r"\^C[\s\S]*PROMPT> ", "^C ends the foreground job")
send("echo status $?\n")
expect(r"status 130", "the job died of SIGINT")
send("stty tostop; echo out >/dev/tty &\n")
expect(r"\[1\] \d+", "background writer started")
time.sleep(0.3)
send("jobs\n")
expect(r"\[1\]\+\s+Stopped\s+echo out", "a background write under TOSTOP brings SIGTTOU")
send("stty -tostop; fg\n")
expect(r"out\r\n", "the writer runs on in the foreground")
send("exit\n")
_, status = os.waitpid(pid, 0)
print("bash exited", os.waitstatus_to_exitcode(status))
END
)
    expect bash-job-control "$out" "bash exited 0"
}

passed=0
failed=0
for t in $(declare -F | awk '$3 ~ /^check_/ {print $3}'); do
    name=${t#check_}
    if msg=$( ("$t") 2>&1 >/dev/null); then
        echo "test debian::$name ... ok"
        passed=$((passed + 1))
    else
        echo "test debian::$name ... FAILED: $(echo "$msg" | tail -n 12 | tr '\n' ' ')"
        failed=$((failed + 1))
    fi
done
echo "debian: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
