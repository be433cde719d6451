//! PVH entry: QEMU (`-kernel kernel.elf`) finds `pvh_start` through the Xen
//! PVH ELF note and enters it in 32-bit protected mode, paging off, with
//! `%ebx` holding the physical address of `hvm_start_info`
//! (xen/include/public/arch-x86/hvm/start_info.h).
//!
//! The trampoline builds throwaway page tables that map the first 4 GiB
//! three times — identity (to keep running here), at the direct-map base
//! (so Rust can reach boot data at `PHYS_OFFSET + pa`), and the first GiB
//! at `KERNEL_VMA` (where Rust is linked) — enables long mode with NX and
//! write protection, and calls `kernel_entry` on the boot stack. The kernel
//! replaces these tables with its own in `mm::kernel_map`.

/// Called by the trampoline with the physical address of `hvm_start_info`.
#[no_mangle]
extern "C" fn kernel_entry(start_info: u64) -> ! {
    crate::kernel_main(start_info)
}

core::arch::global_asm!(
    r#"
    .section .note.pvh, "a", @note
    .balign 4
    .long 4                 /* n_namesz: "Xen\0" */
    .long 4                 /* n_descsz */
    .long 18                /* n_type: XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .long pvh_start         /* 32-bit physical entry point */

    .section .boot.text, "ax"
    .code32
    .global pvh_start
pvh_start:
    cli
    cld
    mov %ebx, %edi                      /* hvm_start_info, first argument later */

    /* PML4[0] and PML4[256] -> pdpt_low (identity and direct map of 0..4 GiB) */
    mov $boot_pdpt_low, %eax
    or $3, %eax
    mov %eax, boot_pml4
    mov %eax, boot_pml4 + 256 * 8
    /* PML4[511] -> pdpt_high, whose entry 510 maps 0xffffffff80000000 -> 0 */
    mov $boot_pdpt_high, %eax
    or $3, %eax
    mov %eax, boot_pml4 + 511 * 8
    mov $boot_pd, %eax
    or $3, %eax
    mov %eax, boot_pdpt_high + 510 * 8

    /* pdpt_low[i] -> boot_pd + i * 4096, i < 4 */
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $12, %eax
    add $boot_pd, %eax
    or $3, %eax
    mov %eax, boot_pdpt_low(, %ecx, 8)
    inc %ecx
    cmp $4, %ecx
    jb 1b

    /* boot_pd[i] = i * 2 MiB | PRESENT | WRITABLE | HUGE, i < 2048 (4 GiB) */
    xor %ecx, %ecx
2:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax
    mov %eax, boot_pd(, %ecx, 8)
    inc %ecx
    cmp $2048, %ecx
    jb 2b

    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $(1 << 5), %eax                  /* CR4.PAE */
    mov %eax, %cr4
    mov $0xc0000080, %ecx               /* IA32_EFER */
    rdmsr
    or $((1 << 8) | (1 << 11)), %eax    /* LME | NXE */
    wrmsr
    mov %cr0, %eax
    or $((1 << 31) | (1 << 16) | 1), %eax   /* PG | WP | PE */
    mov %eax, %cr0

    lgdt boot_gdt_ptr
    ljmp $8, $boot_long_mode

    .code64
boot_long_mode:
    mov $16, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %eax, %eax
    mov %ax, %fs
    mov %ax, %gs
    movabs $__boot_stack_top, %rsp
    movabs $kernel_entry, %rax
    call *%rax
3:  hlt
    jmp 3b

    .section .boot.data, "aw"
    .balign 4096
boot_pml4:      .fill 512, 8, 0
boot_pdpt_low:  .fill 512, 8, 0
boot_pdpt_high: .fill 512, 8, 0
boot_pd:        .fill 4 * 512, 8, 0
    .balign 8
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff            /* 64-bit code */
    .quad 0x00cf92000000ffff            /* data */
boot_gdt_ptr:
    .word boot_gdt_ptr - boot_gdt - 1
    .long boot_gdt
    "#,
    options(att_syntax)
);
