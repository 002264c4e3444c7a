#!/bin/sh
# Generates the secrets compose.yaml passes to its services, one file each, in ./secrets/
# (next to this script). Existing files are kept, so running it again is harmless: never
# regenerate data_key or vapid_private_key of a deployment that has users — data_key decrypts
# every stored TOTP secret, and every Web Push subscription is bound to the VAPID key
# (docs/configuration.md#keys-shared-by-a-cluster). Keep ./secrets/ with your backups.
#
# Needs: openssl, dd, base64, tr.
#
# The directory is 0700, so other users of this machine cannot read it; the files are 0644
# because Compose bind-mounts them as they are, and the containers read them as their own
# unprivileged users (postgres, redis, nobody, the server's uid 10001).
set -eu

cd "$(dirname "$0")"
umask 077
mkdir -p secrets
chmod 0700 secrets
# Never commit what is in here.
[ -f secrets/.gitignore ] || printf '*\n' > secrets/.gitignore

hex() { openssl rand -hex "$1"; }

# put NAME VALUE: writes secrets/NAME (no trailing newline) unless it exists.
put() {
  if [ -s "secrets/$1" ]; then
    echo "kept      secrets/$1"
  else
    printf '%s' "$2" > "secrets/$1.tmp"
    chmod 0644 "secrets/$1.tmp"
    mv "secrets/$1.tmp" "secrets/$1"
    echo "generated secrets/$1"
  fi
}

# The raw 32-byte P-256 private scalar, base64url without padding (what vapid_private_key
# takes). SEC1 DER of a P-256 key: 7 header bytes, then the 32-byte scalar.
vapid_key() {
  openssl ecparam -name prime256v1 -genkey -noout -outform DER \
    | dd bs=1 skip=7 count=32 2>/dev/null \
    | base64 | tr '+/' '-_' | tr -d '=\n'
}

# Hex only: these go into URLs and configuration files without quoting.
put postgres_password "$(hex 24)"
put redis_password "$(hex 24)"
put s3_secret_access_key "$(hex 24)"
put turn_secret "$(hex 32)"
# jwt_secret: at least 32 characters. data_key: exactly 32 bytes, base64.
put jwt_secret "$(openssl rand -base64 48 | tr -d '\n')"
put data_key "$(openssl rand -base64 32 | tr -d '\n')"
put vapid_private_key "$(vapid_key)"

# Derived from the ones above (rewritten each time, so they always match).
pg=$(cat secrets/postgres_password)
redis=$(cat secrets/redis_password)
turn=$(cat secrets/turn_secret)
rm -f secrets/database_url secrets/redis_url secrets/redis.conf secrets/turnserver.conf
put database_url "postgres://secureconnect:${pg}@postgres:5432/secureconnect"
put redis_url "redis://:${redis}@redis:6379/0"
# Redis holds rate-limit windows, presence leases and the pub/sub bus: nothing to persist.
put redis.conf "requirepass ${redis}
save \"\"
appendonly no
"
# coturn's REST-API secret (the same value as turn_secret); its other options are in compose.yaml.
put turnserver.conf "use-auth-secret
static-auth-secret=${turn}
"

echo "secrets are in $(pwd)/secrets"
