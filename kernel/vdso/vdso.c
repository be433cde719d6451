/*
 * The vDSO: clock_gettime, gettimeofday, time, clock_getres and getcpu without entering
 * the kernel (Linux's arch/x86/entry/vdso/vclock_gettime.c and vgetcpu.c over
 * lib/vdso/gettimeofday.c). The kernel keeps the clock's parameters in the vvar page,
 * mapped just below this image (`kernel/src/mm/vdso.rs` writes it under a sequence
 * count, as Linux's `vdso_data`); a clock the page does not describe, or a TSC not yet
 * calibrated, falls back to the system call, whose result is returned as is.
 */
#include <stdint.h>

struct timespec {
	int64_t tv_sec;
	int64_t tv_nsec;
};

struct timeval {
	int64_t tv_sec;
	int64_t tv_usec;
};

struct timezone {
	int tz_minuteswest;
	int tz_dsttime;
};

/* Must match `VdsoData` in kernel/src/mm/vdso.rs. */
struct vdso_data {
	uint32_t seq;		/* odd while the kernel changes the page */
	uint32_t clock_mode;	/* VCLOCK_NONE: use the system call; VCLOCK_TSC */
	uint64_t tsc_base;	/* the TSC at boot: CLOCK_MONOTONIC's 0 */
	uint64_t mult;		/* ns = ((tsc - tsc_base) * mult) >> shift */
	uint32_t shift;
	uint32_t pad;
	int64_t realtime_offset; /* CLOCK_REALTIME - CLOCK_MONOTONIC, in ns */
};

#define VCLOCK_NONE 0
#define VCLOCK_TSC 1

/* The vvar page, one page below the image (vdso.lds). */
extern const volatile struct vdso_data vvar_data __attribute__((visibility("hidden")));

#define CLOCK_REALTIME 0
#define CLOCK_MONOTONIC 1
#define CLOCK_MONOTONIC_RAW 4
#define CLOCK_REALTIME_COARSE 5
#define CLOCK_MONOTONIC_COARSE 6
#define CLOCK_BOOTTIME 7
#define CLOCK_TAI 11

#define NSEC_PER_SEC 1000000000LL

/* The GDT entry whose limit is the CPU's number (node << 12 | cpu; Linux's
 * GDT_ENTRY_CPUNODE, here entry 7). */
#define CPUNODE_SEG (7 * 8 + 3)

#define barrier() __asm__ __volatile__("" ::: "memory")

static long syscall2(long nr, long a, long b)
{
	long ret;
	__asm__ __volatile__("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
	return ret;
}

static uint64_t rdtsc_ordered(void)
{
	uint32_t lo, hi;
	__asm__ __volatile__("lfence; rdtsc" : "=a"(lo), "=d"(hi) :: "memory");
	return ((uint64_t)hi << 32) | lo;
}

/* Nanoseconds of CLOCK_MONOTONIC (realtime: of CLOCK_REALTIME); 0 if the page does
 * not describe the clock. */
static int read_ns(int realtime, int64_t *out)
{
	uint32_t seq;
	int64_t ns;
	do {
		seq = vvar_data.seq;
		barrier();
		if (seq & 1) {
			__asm__ __volatile__("pause");
			continue;
		}
		if (vvar_data.clock_mode != VCLOCK_TSC)
			return 0;
		uint64_t d = rdtsc_ordered() - vvar_data.tsc_base;
		ns = (int64_t)(uint64_t)(((unsigned __int128)d * vvar_data.mult) >> vvar_data.shift);
		if (realtime)
			ns += vvar_data.realtime_offset;
		barrier();
	} while (seq & 1 || vvar_data.seq != seq);
	*out = ns;
	return 1;
}

static int clock_kind(int clock)
{
	switch (clock) {
	case CLOCK_REALTIME:
	case CLOCK_REALTIME_COARSE:
	case CLOCK_TAI: /* the TAI offset is 0 */
		return 1;
	case CLOCK_MONOTONIC:
	case CLOCK_MONOTONIC_RAW:
	case CLOCK_MONOTONIC_COARSE:
	case CLOCK_BOOTTIME:
		return 0;
	default:
		return -1;
	}
}

int __vdso_clock_gettime(int clock, struct timespec *ts)
{
	int64_t ns;
	int kind = clock_kind(clock);
	if (kind < 0 || !read_ns(kind, &ns))
		return syscall2(228, clock, (long)ts);
	int64_t sec = ns / NSEC_PER_SEC, rem = ns % NSEC_PER_SEC;
	if (rem < 0) {
		rem += NSEC_PER_SEC;
		sec--;
	}
	ts->tv_sec = sec;
	ts->tv_nsec = rem;
	return 0;
}

int __vdso_gettimeofday(struct timeval *tv, struct timezone *tz)
{
	int64_t ns;
	if (!read_ns(1, &ns))
		return syscall2(96, (long)tv, (long)tz);
	if (tv) {
		int64_t sec = ns / NSEC_PER_SEC, rem = ns % NSEC_PER_SEC;
		if (rem < 0) {
			rem += NSEC_PER_SEC;
			sec--;
		}
		tv->tv_sec = sec;
		tv->tv_usec = rem / 1000;
	}
	if (tz) {
		/* The kernel's timezone (sys_tz), which nothing here sets. */
		tz->tz_minuteswest = 0;
		tz->tz_dsttime = 0;
	}
	return 0;
}

int64_t __vdso_time(int64_t *t)
{
	int64_t ns;
	if (!read_ns(1, &ns))
		return syscall2(201, (long)t, 0);
	int64_t sec = ns / NSEC_PER_SEC;
	if (ns % NSEC_PER_SEC < 0)
		sec--;
	if (t)
		*t = sec;
	return sec;
}

int __vdso_clock_getres(int clock, struct timespec *res)
{
	if (clock_kind(clock) < 0 || vvar_data.clock_mode != VCLOCK_TSC)
		return syscall2(229, clock, (long)res);
	if (res) {
		res->tv_sec = 0;
		res->tv_nsec = 1;
	}
	return 0;
}

long __vdso_getcpu(unsigned *cpu, unsigned *node, void *unused)
{
	unsigned int p;
	(void)unused;
	__asm__ __volatile__("lsl %1, %0" : "=r"(p) : "r"(CPUNODE_SEG));
	if (cpu)
		*cpu = p & 0xfff;
	if (node)
		*node = p >> 12;
	return 0;
}

int clock_gettime(int, struct timespec *) __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct timeval *, struct timezone *) __attribute__((weak, alias("__vdso_gettimeofday")));
int64_t time(int64_t *) __attribute__((weak, alias("__vdso_time")));
int clock_getres(int, struct timespec *) __attribute__((weak, alias("__vdso_clock_getres")));
long getcpu(unsigned *, unsigned *, void *) __attribute__((weak, alias("__vdso_getcpu")));
