#!/bin/sh
# Start the daemon with a listener that wants TLS and a login, then try
# three times with swaks: in clear text, with a wrong password, and with
# the right one.
set -e
dir=$(mktemp -d)
chmod 755 "$dir"  # as root, the processes that drop to _smtpd must get in
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT

# A throwaway ECDSA certificate for mx.example.org, good for one day.
openssl req -x509 -nodes -days 1 -subj /CN=mx.example.org \
  -addext subjectAltName=DNS:mx.example.org \
  -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
  -keyout "$dir/mx.key" -out "$dir/mx.crt" 2>/dev/null

# The password table: one user, alice, with a hash from smtpctl encrypt.
echo "alice $(echo 'correct horse' | smtpctl encrypt)" > "$dir/passwords"
chmod 644 "$dir/passwords"  # read by the lookup process (hashes only)

# The agent, running as the recipient, makes its Maildir in here.
mkdir -m 1777 "$dir/mail"

# A free port on 127.0.0.1, then the daemon in the foreground (-d).
# The log file exists before the daemon does, so that the wait below
# never reads a file the background job has not opened yet.
port=$(python3 -c 'import socket; s = socket.socket()
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
: > "$dir/log"
smtpd -d -v -f smtpd.conf --spool "$dir/spool" -D port="$port" \
  -D cert="\"$dir/mx.crt\"" -D key="\"$dir/mx.key\"" \
  -D passwords="\"$dir/passwords\"" \
  -D maildir="\"$dir/mail/%{user.username}\"" \
  2>"$dir/log" &
pid=$!
tries=0
until grep -q 'processes started' "$dir/log"; do
  tries=$((tries + 1))
  [ $tries -lt 300 ] || { cat "$dir/log"; exit 1; }
  sleep 0.1
done

send() {  # swaks with what all three tries share
  swaks --server "127.0.0.1:$port" --helo laptop.example.net \
    --from alice@example.org --to nobody@example.org \
    --header 'Subject: hello over TLS' --body 'It works.' "$@" \
    || echo "(swaks exited with status $?)"
}
echo '### 1. In clear text'
send
echo '### 2. Over TLS, with a wrong password'
send --tls --auth PLAIN --auth-user alice \
  --auth-password 'wrong horse' --quit-after AUTH
echo '### 3. Over TLS, with the right password'
send --tls --auth LOGIN --auth-user alice \
  --auth-password 'correct horse' --suppress-data

echo '### The Received: field of the delivered message'
tries=0
until [ -n "$(ls "$dir/mail/nobody/new" 2>/dev/null)" ]; do
  tries=$((tries + 1))
  [ $tries -lt 100 ] || { echo 'not delivered'; exit 1; }
  sleep 0.1
done
sed -n '/^Received:/,/^[^[:space:]R]/p' "$dir/mail/nobody/new/"* \
  | sed '$d'
echo '### What the smtp process logged'
grep -E '^[0-9a-f]{16} smtp ' "$dir/log"
