# Shared by run.sh and bench.sh: an sshd on the loopback addresses 127.0.0.2-127.0.0.5 and the
# four-node inventory. Source it with work, venv set; it sets transport (ssh|local), port, keys.
hosts=(cp1 gw1 gw2 tm1)
declare -A addr=([cp1]=127.0.0.2 [gw1]=127.0.0.3 [gw2]=127.0.0.4 [tm1]=127.0.0.5)
declare -A prof=([cp1]=control-plane [gw1]=gateway-worker [gw2]=gateway-worker [tm1]=traffic-manager)

# --- sshd on the loopback addresses, as root, on a high port -------------------------------
keys=$(mktemp -d "$work/ssh.XXXXXX")
chmod 700 "$keys"
sshd_pid=
stop_sshd() { if [ -n "$sshd_pid" ]; then kill "$sshd_pid" 2>/dev/null || true; wait "$sshd_pid" 2>/dev/null || true; fi; }
trap stop_sshd EXIT
transport=local
why=""
sshd=$(command -v sshd || echo /usr/sbin/sshd)
if [ "${APIM_TEST_NO_SSH:-}" = 1 ]; then
  why="APIM_TEST_NO_SSH=1"
elif [ "$(id -u)" != 0 ]; then
  why="not root (sshd must run as root to log in)"
elif [ ! -x "$sshd" ]; then
  why="no sshd (apt-get install openssh-server)"
else
  ssh-keygen -q -t ed25519 -N '' -f "$keys/host" -C apim-test-host
  ssh-keygen -q -t ed25519 -N '' -f "$keys/user" -C apim-test-user
  cp "$keys/user.pub" "$keys/authorized_keys"
  port=$(( 20000 + RANDOM % 20000 ))
  {
    echo "Port $port"
    for h in "${hosts[@]}"; do echo "ListenAddress ${addr[$h]}"; done
    echo "HostKey $keys/host"
    echo "AuthorizedKeysFile $keys/authorized_keys"
    echo "PidFile $keys/sshd.pid"
    echo "PermitRootLogin prohibit-password"
    echo "PasswordAuthentication no"
    echo "KbdInteractiveAuthentication no"
    echo "UsePAM no"
    echo "AllowUsers root"
    # The keys sit in a mode-700 directory under the temp dir, whose world-writable /tmp
    # StrictModes would refuse.
    echo "StrictModes no"
    echo "Subsystem sftp internal-sftp"
    echo "MaxStartups 50"
    echo "MaxSessions 50"
  } > "$keys/sshd_config"
  for h in "${hosts[@]}"; do echo "[${addr[$h]}]:$port $(cut -d' ' -f1,2 "$keys/host.pub")"; done > "$keys/known_hosts"
  mkdir -p /run/sshd
  "$sshd" -D -e -f "$keys/sshd_config" 2> "$keys/sshd.log" &
  sshd_pid=$!
  for _ in $(seq 50); do
    if ssh -p "$port" -i "$keys/user" -o BatchMode=yes -o UserKnownHostsFile="$keys/known_hosts" \
      -o StrictHostKeyChecking=yes root@127.0.0.5 true 2>/dev/null; then transport=ssh; break; fi
    kill -0 "$sshd_pid" 2>/dev/null || break
    sleep 0.2
  done
  [ "$transport" = ssh ] || { why="sshd did not accept a login: $(tail -3 "$keys/sshd.log" | tr '\n' ' ')"; stop_sshd; sshd_pid=; }
fi
if [ "$transport" = local ]; then echo "note: nodes use ansible_connection=local ($why)"; fi

inventory() { # FILE [HOST=PROFILE override]
  local file=$1 override=${2:-}
  {
    echo "[apim]"
    for h in "${hosts[@]}"; do
      local p=${prof[$h]}
      if [ -n "$override" ] && [ "${override%%=*}" = "$h" ]; then p=${override#*=}; fi
      echo "$h ansible_host=${addr[$h]} apim_profile=$p apim_profiles_dest=$nodes/$h"
    done
    echo "[apim:vars]"
    echo "ansible_python_interpreter=$venv/bin/python"
    if [ "$transport" = ssh ]; then
      echo "ansible_connection=ssh"
      echo "ansible_user=root"
      echo "ansible_port=$port"
      echo "ansible_ssh_private_key_file=$keys/user"
      echo "ansible_ssh_common_args='-o UserKnownHostsFile=$keys/known_hosts -o StrictHostKeyChecking=yes'"
    else
      echo "ansible_connection=local"
    fi
  } > "$file"
}

