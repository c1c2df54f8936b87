#!/bin/busybox sh
# /init of viommu's test guest (busybox sh; packed into initrd.gz by scripts/guest/build-guest.mjs).
#
# Brings up /dev/nvme0n1 with Linux's nvme driver, then runs a list of steps, talking to the host over the
# serial console. Every line meant for the host starts with "VIOMMU " (other console lines can be ignored):
#
#   VIOMMU boot <uptime> <idle>            /init started (guest uptime from /proc/uptime)
#   VIOMMU insmod <module> <param=value>...  parameters taken from the kernel command line
#   VIOMMU insmod-failed <module>          a module did not load (the run goes on)
#   VIOMMU disk <dev> bytes=<n> lbs=<n>    the namespace is there
#   VIOMMU ready steps=<a,b,...> mib=<n> bench_mib=<n> bench_mib_1m=<n>
#   VIOMMU step <name>                     a step starts
#   VIOMMU pattern <a|b|ab> <md5> bytes=<n>  md5 of the generated test data (ab = a then b)
#   VIOMMU result <name> <ok|fail> <md5|-> rc=<dd exit> [match=<yes|no>]
#                                          ok/fail is dd's outcome; match compares a read with what was written
#   VIOMMU dd-error <text>                 first line of dd's stderr when it failed
#   VIOMMU dmesg <line>                    kernel log lines (nvme, I/O error) that appeared during a step
#   VIOMMU await <name>                    the guest waits for ONE line from the host on the console:
#                                          "go" runs the step, "skip" skips it (anything else counts as go)
#   VIOMMU got <name> <line>               the line received
#   VIOMMU mark <name> begin bytes=<n> bs=<bs>   timing marks around one dd (host times them with
#   VIOMMU mark <name> end rc=<n>                 performance.now(); the guest clock is emulated and coarse)
#   VIOMMU error <text>                    something went wrong (a step or the set-up)
#   VIOMMU summary failed=<n>              number of steps whose outcome was not the expected one
#   VIOMMU done                            last line; then poweroff -f
#
# The host answers an await by writing "go\n" (or "skip\n") to the guest's serial port 0
# (v86: emulator.serial0_send('go\n')), only after it has seen the await line.
#
# Kernel command line (all optional):
#   viommu.steps=<a,b,...>  steps to run, in order (default below)
#   viommu.mib=<n>          size of each of the two test patterns in MiB (default 4)
#   viommu.bench_mib=<n>    bytes moved by each benchmark mark, in MiB (default 16)
#   viommu.bench_mib_1m=<n> the same for the two 1 MiB-block marks (default: bench_mib)
#   viommu.dev=<name>       block device (default nvme0n1)
#   viommu.wait=<s>         how long to wait for the device (default 60)
#   <module>.<param>=<value>  passed to insmod for the modules in /lib/mods (insmod itself ignores the
#                           command line), e.g. nvme_core.io_timeout=5 nvme_core.admin_timeout=3
#
# Steps:
#   info           kernel release and the nvme driver's dmesg lines (at most 10)
#   dmesg          the last 40 kernel log lines about nvme or I/O errors
#   pattern        makes /tmp/pat.a and /tmp/pat.b (deterministic, <mib> MiB each; done on demand anyway)
#   write-4k       pat.a -> disk at 0, bs=4k, oflag=direct        (result md5 = md5 of pat.a)
#   write-1m       pat.b -> disk at <mib> MiB, bs=1M, oflag=direct (result md5 = md5 of pat.b)
#   read-4k        disk [0, 2*<mib> MiB) bs=4k iflag=direct, md5 compared with pattern ab
#   read-1m        same with bs=1M
#   read-revoked   await; then dd iflag=direct bs=4k of 1 MiB at 0 (expected to FAIL while the host has
#                  revoked the device's access), result plus the new dmesg lines about nvme / I/O errors
#   read-restored  await; then the read-4k read again (expected to succeed and match)
#   bench          marks bench-write-4k, bench-write-1m, bench-read-4k, bench-read-1m: queue depth 1
#                  (one dd), O_DIRECT, <bench_mib> MiB each (<bench_mib_1m> for the 1 MiB blocks), at offset
#                  2*<mib> MiB; writes come from /dev/zero
#   await:<name>   just an await (a sync point for the host)
#
# Pattern: 512-byte records "viommu-<tag> <record index, %08x> <493 filler chars>\n", the filler being the
# 62 characters 0-9A-Za-z rotated left by (index mod 62), repeated, cut to 493.

/bin/busybox mkdir -p /bin /proc /sys /dev /tmp
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
[ -c /dev/console ] && exec </dev/console >/dev/console 2>&1

say() { echo "VIOMMU $*"; }
say boot $(cat /proc/uptime)

STEPS=info,pattern,write-4k,write-1m,read-4k,read-1m,read-revoked,read-restored,bench
MIB=4
BENCH_MIB=16
BENCH_MIB_1M=
DEV=nvme0n1
WAIT=60
for w in $(cat /proc/cmdline); do
  case "$w" in
    viommu.steps=*) STEPS=${w#*=} ;;
    viommu.mib=*) MIB=${w#*=} ;;
    viommu.bench_mib=*) BENCH_MIB=${w#*=} ;;
    viommu.bench_mib_1m=*) BENCH_MIB_1M=${w#*=} ;;
    viommu.dev=*) DEV=${w#*=} ;;
    viommu.wait=*) WAIT=${w#*=} ;;
  esac
done

# No echo of what the host types, so the host's input does not come back as console lines.
stty -echo 2>/dev/null

FAILED=0
finish() {
  say summary failed=$FAILED
  say done
  sync
  poweroff -f
  sleep 5
  exit 0
}

dmesg_tail() { # print the kernel log lines after line $1 that mention nvme or I/O errors (at most $2)
  dmesg | tail -n +$(($1 + 1)) | grep -i -E 'nvme|I/O error|blk_update|Buffer I/O' | grep -v 'command line' | tail -n "$2" |
    while IFS= read -r l; do say dmesg "$l"; done
}

# insmod does not look at the kernel command line (modprobe does): hand each module its
# "<module>.<param>=<value>" words from it, e.g. nvme_core.io_timeout=5 nvme_core.admin_timeout=3.
CMDLINE=$(cat /proc/cmdline)
while IFS= read -r m; do
  [ -n "$m" ] || continue
  mod=$(echo "$m" | tr - _)
  params=
  for w in $CMDLINE; do
    case "$w" in "$mod".*=*) params="$params ${w#"$mod".}" ;; esac
  done
  [ -z "$params" ] || say insmod "$m"$params
  insmod "/lib/mods/$m.ko" $params 2>/dev/null || say insmod-failed "$m"
done </lib/mods/order

i=0
while [ ! -b "/dev/$DEV" ]; do
  i=$((i + 1))
  if [ $i -gt $((WAIT * 10)) ]; then
    say error "no /dev/$DEV after ${WAIT}s"
    dmesg_tail 0 20
    FAILED=$((FAILED + 1))
    finish
  fi
  sleep 0.1
done
DISK=/dev/$DEV
BYTES=$(($(cat /sys/block/$DEV/size) * 512))
say disk $DEV bytes=$BYTES lbs=$(cat /sys/block/$DEV/queue/logical_block_size)
[ -n "$BENCH_MIB_1M" ] || BENCH_MIB_1M=$BENCH_MIB
say ready steps=$STEPS mib=$MIB bench_mib=$BENCH_MIB bench_mib_1m=$BENCH_MIB_1M

md5() { md5sum | { read -r h _; echo "$h"; }; }

PAT_AB=
pattern() {
  [ -n "$PAT_AB" ] && return 0
  for tag in a b; do
    awk -v tag=$tag -v n=$((MIB * 2048)) 'BEGIN {
      s = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"; ss = s s
      for (r = 0; r < 62; r++) { t = substr(ss, r + 1, 62); t = t t t t t t t t; rot[r] = substr(t, 1, 493) }
      for (i = 0; i < n; i++) printf "viommu-%s %08x %s\n", tag, i, rot[i % 62]
    }' >/tmp/pat.$tag
    size=$(wc -c </tmp/pat.$tag)
    if [ "$size" != $((MIB * 1048576)) ]; then
      say error "pattern $tag has $size bytes"
      return 1
    fi
    say pattern $tag $(md5 </tmp/pat.$tag) bytes=$size
  done
  PAT_AB=$(cat /tmp/pat.a /tmp/pat.b | md5)
  say pattern ab $PAT_AB bytes=$((2 * MIB * 1048576))
}

# result <name> <rc> <md5|-> [expected md5]: prints the result line and counts a failure
result() {
  name=$1 rc=$2 sum=$3 want=$4 st=ok
  [ "$rc" = 0 ] || st=fail
  if [ -n "$want" ]; then
    m=no
    [ "$sum" = "$want" ] && m=yes
    say result $name $st $sum rc=$rc match=$m
    [ $st = ok ] && [ $m = yes ] || FAILED=$((FAILED + 1))
  else
    say result $name $st $sum rc=$rc
    [ $st = ok ] || FAILED=$((FAILED + 1))
  fi
  if [ "$rc" != 0 ] && [ -s /tmp/dd.err ]; then say dd-error "$(head -n 1 /tmp/dd.err)"; fi
}

# write <name> <file> <bs> <seek in bs units>
write() {
  pattern || { FAILED=$((FAILED + 1)); return; }
  dd if=$2 of=$DISK bs=$3 seek=$4 oflag=direct conv=fsync 2>/tmp/dd.err
  result $1 $? $(md5 <$2)
}

# readback <name> <bs> <count> [expected]: reads from 0, prints md5
readback() {
  sum=$({ dd if=$DISK bs=$2 count=$3 iflag=direct 2>/tmp/dd.err; echo $? >/tmp/dd.rc; } | md5)
  result $1 $(cat /tmp/dd.rc) $sum $4
}

await() {
  say await $1
  IFS= read -r reply || reply=
  reply=$(echo "$reply" | tr -d '\r')
  say got $1 $reply
  case "$reply" in skip*) return 1 ;; esac
  return 0
}

mark() { # mark <name> <bs> <dd args...>: one timed dd
  name=$1 bs=$2
  shift 2
  mib=$BENCH_MIB
  [ "$bs" = 1M ] && mib=$BENCH_MIB_1M
  say mark $name begin bytes=$((mib * 1048576)) bs=$bs
  dd bs=$bs "$@" 2>/tmp/dd.err
  rc=$?
  say mark $name end rc=$rc
  [ $rc = 0 ] || { FAILED=$((FAILED + 1)); say dd-error "$(head -n 1 /tmp/dd.err)"; }
}

BENCH_MAX=$BENCH_MIB
[ "$BENCH_MIB_1M" -le "$BENCH_MAX" ] || BENCH_MAX=$BENCH_MIB_1M
if [ $((BYTES)) -lt $(((2 * MIB + BENCH_MAX) * 1048576)) ]; then
  say error "$DEV has $BYTES bytes; the steps need $(((2 * MIB + BENCH_MAX) * 1048576))"
fi

for step in $(echo "$STEPS" | tr ',' ' '); do
  say step $step
  case "$step" in
    info)
      say kernel $(uname -r)
      dmesg_tail 0 10
      ;;
    dmesg) dmesg_tail 0 40 ;;
    pattern) pattern || FAILED=$((FAILED + 1)) ;;
    write-4k) write write-4k /tmp/pat.a 4k 0 ;;
    write-1m) write write-1m /tmp/pat.b 1M $MIB ;;
    read-4k) pattern && readback read-4k 4k $((2 * MIB * 256)) $PAT_AB ;;
    read-1m) pattern && readback read-1m 1M $((2 * MIB)) $PAT_AB ;;
    read-revoked)
      if await read-revoked; then
        n0=$(dmesg | wc -l)
        dd if=$DISK of=/dev/null bs=4k count=256 iflag=direct 2>/tmp/dd.err
        rc=$?
        st=ok
        [ $rc = 0 ] || st=fail
        say result read-revoked $st - rc=$rc
        [ $rc = 0 ] || say dd-error "$(head -n 1 /tmp/dd.err)"
        dmesg_tail $n0 12
      fi
      ;;
    read-restored)
      if await read-restored; then
        pattern && readback read-restored 4k $((2 * MIB * 256)) $PAT_AB
      fi
      ;;
    bench)
      o=$((2 * MIB))
      mark bench-write-4k 4k if=/dev/zero of=$DISK count=$((BENCH_MIB * 256)) seek=$((o * 256)) oflag=direct
      mark bench-write-1m 1M if=/dev/zero of=$DISK count=$BENCH_MIB_1M seek=$o oflag=direct
      mark bench-read-4k 4k if=$DISK of=/dev/null count=$((BENCH_MIB * 256)) skip=$((o * 256)) iflag=direct
      mark bench-read-1m 1M if=$DISK of=/dev/null count=$BENCH_MIB_1M skip=$o iflag=direct
      ;;
    await:*) await ${step#await:} ;;
    *)
      say error "unknown step $step"
      FAILED=$((FAILED + 1))
      ;;
  esac
done
finish
