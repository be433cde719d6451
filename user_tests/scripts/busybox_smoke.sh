#!/busybox sh
# Everyday busybox applets through the shell: files, pipes, archives, job control, /proc.
# Run by `cargo xtask test` as pid 1 in the kernel (busybox sh /busybox_smoke.sh).
B=/busybox
set -e
cd /tmp
$B mkdir -p a/b/c && $B echo hello > a/b/c/f && $B cat a/b/c/f
$B cp a/b/c/f g && $B mv g h && $B ls -la && $B ln -s h lnk && $B readlink lnk && $B cat lnk
$B find /tmp -name f
$B echo "3 1 2" | $B tr ' ' '\n' | $B sort -n | $B wc -l
$B sed -e 's/hello/bye/' a/b/c/f
$B awk 'BEGIN{print 6*7}'
$B dd if=/dev/zero of=z bs=4096 count=10 2>&1 | $B tail -1
$B ls -l z
$B tar cf t.tar a && $B tar tf t.tar
$B gzip -c z > z.gz && $B gunzip -c z.gz | $B wc -c
$B ps
$B free
$B uptime
$B date
$B df /
$B sleep 0.1
$B timeout 1 $B sleep 5 || echo "timeout status $?"
(sleep 0.1; echo bg done) & wait; echo "waited"
$B seq 1 5 | $B xargs echo
$B head -c 100 /dev/urandom | $B md5sum
$B kill -0 $$ && echo alive
$B rm -rf a h lnk z z.gz t.tar
$B ls /tmp
$B stat /tmp
$B id
$B uname -a
$B env | $B sort | $B head -3
$B nproc
$B mktemp
$B true && echo done-all
