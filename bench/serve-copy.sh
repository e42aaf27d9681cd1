# Sourced by bench/ab.sh and bench/cpu-per-request.sh: serve a fresh copy of a preloaded data
# directory on 127.0.0.1:8080, and stop it again.
#   serve_copy BINARY SOURCE COPY LOG    sets SERVER_PID; returns once /healthz answers
#   stop_copy COPY                       stops any server on COPY, waiting for it to exit

stop_copy() {
  pkill -f "serve --data-dir $1" || true
  for _ in $(seq 100); do pgrep -f "serve --data-dir $1" >/dev/null || break; sleep 0.1; done
  pkill -9 -f "serve --data-dir $1" || true
}

serve_copy() {
  local binary=$1 source=$2 copy=$3 log=$4
  stop_copy "$copy"
  rm -rf "$copy"; cp -r "$source" "$copy"; sync
  "$binary" serve --data-dir "$copy" --listen 127.0.0.1:8080 --log-level warn 2> "$log" &
  SERVER_PID=$!
  for _ in $(seq 50); do curl -sf http://127.0.0.1:8080/healthz >/dev/null && break; sleep 0.1; done
}
