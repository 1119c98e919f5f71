#!/bin/bash
# Runs once inside a fresh debootstrap rootfs (systemd-nspawn, not booted) when sysbed.sh makes
# it: what the operators' host has before trading-heal is installed. Changing this file rebuilds
# the cached rootfs. Arguments: none; /root/schema.sql is the operators' schema.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

# Package scripts run later (apt-get install in a booted container) may start services again.
rm -f /usr/sbin/policy-rc.d

# PostgreSQL 15 on loopback, the operators' port (SPEC: POSTGRES_PORT=5433), password logins
# (Debian's pg_hba: scram-sha-256 for host connections). The schema and two roles with
# passwords made here, readable by root only, for the tests to put into the env files.
conf=/etc/postgresql/15/main/postgresql.conf
sed -i -e "s/^#\{0,1\}port = .*/port = 5433/" \
  -e "s/^#\{0,1\}listen_addresses = .*/listen_addresses = '127.0.0.1'/" "$conf"
ro_pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
agent_pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
pg_ctlcluster 15 main start
runuser -u postgres -- psql -q -X -v ON_ERROR_STOP=1 -p 5433 </root/schema.sql
runuser -u postgres -- psql -q -X -v ON_ERROR_STOP=1 -p 5433 \
  -c "ALTER ROLE trading_heal_ro PASSWORD '$ro_pw'" -c "ALTER ROLE crypto_agent PASSWORD '$agent_pw'"
pg_ctlcluster 15 main stop
rm -f /root/schema.sql
install -m 0600 /dev/null /root/sysbed-secrets
printf 'RO_PASSWORD=%s\nAGENT_PASSWORD=%s\n' "$ro_pw" "$agent_pw" >/root/sysbed-secrets

# The trading agents: their own user, a self-contained program dir (like a Python venv; the
# simulator and its libpqxx are copied in at boot), settings readable by that user only. The
# unit is the operators' (SPEC: Restart=always, RestartSec=10, StartLimitBurst=5 in 120 s).
useradd --system --home-dir /opt/crypto-agent --no-create-home --shell /usr/sbin/nologin crypto-agent
mkdir -p /opt/crypto-agent/bin /opt/crypto-agent/lib /var/lib/crypto-agent/control
chown crypto-agent:crypto-agent /var/lib/crypto-agent /var/lib/crypto-agent/control
install -d -m 0750 -o root -g crypto-agent /etc/crypto-agent
cat >/etc/crypto-agent/agents.env <<EOF
AGENT_DATABASE_URL=postgresql://crypto_agent:$agent_pw@127.0.0.1:5433/postgres
DECISION_INTERVAL=1
SIM_BOOTSTRAP_SECONDS=1
SIM_HEARTBEAT_DIR=/tmp
SIM_CONTROL_DIR=/var/lib/crypto-agent/control
EOF
chmod 0640 /etc/crypto-agent/agents.env
chgrp crypto-agent /etc/crypto-agent/agents.env
cat >/etc/systemd/system/crypto-agent@.service <<'EOF'
[Unit]
Description=Crypto trading agent %i (trading-heal system testbed simulator)
After=postgresql.service
StartLimitBurst=5
StartLimitIntervalSec=120

[Service]
Type=simple
User=crypto-agent
ExecStart=/opt/crypto-agent/bin/trading-heal-agent-sim trading_agent.py %i
Environment=LD_LIBRARY_PATH=/opt/crypto-agent/lib
EnvironmentFile=/etc/crypto-agent/agents.env
SyslogIdentifier=crypto-agent-%i
Restart=always
RestartSec=10
TimeoutStopSec=10
EOF

# sshd for deploy over ssh: loopback only, port 2222 (the container shares the host's network),
# keys only, started by the test that needs it.
sed -i -e 's/^#\{0,1\}Port .*/Port 2222/' -e 's/^#\{0,1\}ListenAddress 0.0.0.0/ListenAddress 127.0.0.1/' \
  -e 's/^#\{0,1\}PasswordAuthentication .*/PasswordAuthentication no/' /etc/ssh/sshd_config
systemctl disable -q ssh.service 2>/dev/null || true
rm -f /etc/ssh/ssh_host_*  # made per boot by the test (ssh-keygen -A), never shared
install -d -m 0700 /root/.ssh

# The package lists, so that `apt-get install ./trading-heal_*.deb` resolves its Depends.
apt-get update -qq
apt-get clean
rm -rf /var/lib/apt/lists/partial
