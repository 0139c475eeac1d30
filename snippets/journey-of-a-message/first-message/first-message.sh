#!/usr/bin/env bash
# What "Run it" does by hand: start smtpd with no configuration (the
# embedded default) in a fresh directory, send it one message, wait for
# the message to land in ./var/mail, show what happened, stop smtpd.
set -euo pipefail

# The embedded default always listens on 127.0.0.1 port 2525, where your
# own `pnpm smtpd` may be running. As root, this script takes a network
# of its own (unshare -n): its own 127.0.0.1, on which 2525 is free.
if [[ -z ${PRIVATE_NET:-} && $(id -u) == 0 ]] && unshare -n true 2>/dev/null; then
  PRIVATE_NET=1 exec unshare -n "$BASH" "$0" "$@"
fi
if [[ -n ${PRIVATE_NET:-} ]]; then ip link set lo up; fi

dir=$(mktemp -d -t journey-XXXXXXXX)
chmod 755 "$dir" # as root, the queue runs as _smtpq and must get through
cd "$dir"
user=$(id -un)

smtpd >stdout.txt 2>stderr.txt &
pid=$!
# Whatever happens, leave no daemon and no directory behind.
trap 'kill -TERM $pid 2>/dev/null && wait $pid; rm -rf "$dir"' EXIT

# Waits (20 s at most) until the command succeeds; gives up if smtpd has exited.
wait_for() {
  for _ in $(seq 200); do
    if "$@" 2>/dev/null; then return 0; fi
    if ! kill -0 $pid 2>/dev/null; then echo "smtpd exited:"; cat stderr.txt; exit 1; fi
    sleep 0.1
  done
  echo "gave up waiting for: $*"; cat stderr.txt; exit 1
}

wait_for grep -q 'stop with Ctrl-C' stdout.txt

# The message, sent as the banner suggests, from Python's standard library.
python3 - "$user" <<'EOF'
import smtplib, sys
user = sys.argv[1]
with smtplib.SMTP('127.0.0.1', 2525) as smtp:
    smtp.sendmail('me@localhost', [f'{user}@localhost'],
                  f'From: Me <me@localhost>\nTo: {user}@localhost\nSubject: hi\n\nhello\n')
EOF

has_mail() { [[ -n $(ls "var/mail/$user/new") ]]; }
wait_for has_mail
wait_for grep -q 'result=Ok' stderr.txt
kill -TERM $pid
wait $pid

echo "\$ smtpd            # in $dir"
cat stdout.txt
echo
echo '# its log (stderr):'
cat stderr.txt
echo
echo "\$ ls var/mail/$user/new"
ls "var/mail/$user/new"
echo "\$ cat var/mail/$user/new/*"
cat "var/mail/$user/new/"*
