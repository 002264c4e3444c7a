#!/usr/bin/env bash
# Backs up a distributed SecureConnect (PostgreSQL + an S3 bucket) into a new directory, while
# the instances serve:
#
#   scripts/backup-postgres-s3.sh --to DIR [--tool aws|mc]
#
#   DIR/database.dump   pg_dump --format=custom: one consistent snapshot of the database
#   DIR/bucket/         the bucket's objects (objects/<2 hex>/<32 hex>), copied after the dump
#   DIR/secrets/        jwt_secret, data_key, vapid_private_key (data_key is required: it
#                       encrypts the TOTP secrets inside the dump)
#   DIR/backup-info     when, what and with which tools; objects the dump needs but the copy lacks
#   DIR/SHA256SUMS      every file above; scripts/restore-postgres-s3.sh checks it first
#
# Everything is written into DIR.partial, renamed to DIR once complete. The embedded mode
# (SQLite) has its own command, `secureconnect backup --to DIR`. See "Backup and restore" in
# docs/operations.md.
#
# Settings, from the environment, with the server's own SC_* names (so its environment file can
# be sourced first: `set -a; . /etc/secureconnect.env; set +a`):
#   SC_DATABASE_URL or SC_DATABASE_URL_FILE   the database; pg_dump must be as new as the server
#   SC_S3_BUCKET                              the bucket
#   SC_S3_ENDPOINT                            the store, when it is not AWS (aws --endpoint-url)
#   SC_S3_REGION                              aws: the region (default us-east-1)
#   aws: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE; else the server's
#        SC_S3_ACCESS_KEY_ID and SC_S3_SECRET_ACCESS_KEY (or SC_S3_SECRET_ACCESS_KEY_FILE)
#   mc:  MC_ALIAS (default "sc"), made once with `mc alias set sc ENDPOINT KEY SECRET`
#   secrets: SECRETS_DIR holding jwt_secret, data_key and vapid_private_key, else
#        SC_JWT_SECRET[_FILE], SC_DATA_KEY[_FILE], SC_VAPID_PRIVATE_KEY[_FILE]
#
# Needs: pg_dump and pg_restore (PostgreSQL client tools), aws (AWS CLI v2) or mc (MinIO
# client), sha256sum, awk, find.
set -euo pipefail

usage() {
  echo "usage: $0 --to DIR [--tool aws|mc]" >&2
  exit 2
}
die() {
  echo "error: $*" >&2
  exit 1
}
warn() { echo "warning: $*" >&2; }

to=""
tool=""
while [ $# -gt 0 ]; do
  case "$1" in
    --to) to=${2:-}; shift 2 || usage ;;
    --tool) tool=${2:-}; shift 2 || usage ;;
    *) usage ;;
  esac
done
[ -n "$to" ] || usage

# setting NAME: the value of $NAME, else the contents of the file named by $NAME_FILE.
setting() {
  local file_var="${1}_FILE"
  if [ -n "${!1:-}" ]; then
    printf '%s' "${!1}"
  elif [ -n "${!file_var:-}" ]; then
    [ -r "${!file_var}" ] || die "cannot read ${file_var}=${!file_var}"
    printf '%s' "$(< "${!file_var}")"
  fi
}

pick_tool() {
  if [ -z "$tool" ]; then
    if command -v aws > /dev/null; then tool=aws
    elif command -v mc > /dev/null; then tool=mc
    else die "neither aws (AWS CLI) nor mc (MinIO client) is installed"
    fi
  fi
  case "$tool" in
    aws | mc) command -v "$tool" > /dev/null || die "$tool is not installed" ;;
    *) usage ;;
  esac
}

# The AWS CLI reads its own variables; fill them from the server's when they are unset.
aws_env() {
  if [ -z "${AWS_ACCESS_KEY_ID:-}" ] && [ -z "${AWS_PROFILE:-}" ] && [ -n "${SC_S3_ACCESS_KEY_ID:-}" ]; then
    AWS_ACCESS_KEY_ID=$SC_S3_ACCESS_KEY_ID
    AWS_SECRET_ACCESS_KEY=$(setting SC_S3_SECRET_ACCESS_KEY)
    export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
  fi
  export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-${SC_S3_REGION:-us-east-1}}
  aws_args=()
  if [ -n "${SC_S3_ENDPOINT:-}" ]; then aws_args+=(--endpoint-url "$SC_S3_ENDPOINT"); fi
}

# copy_bucket DEST: every object of the bucket into DEST.
copy_bucket() {
  case "$tool" in
    aws) aws "${aws_args[@]}" s3 sync --only-show-errors "s3://$bucket" "$1" ;;
    mc) mc mirror --quiet "${MC_ALIAS:-sc}/$bucket" "$1" ;;
  esac
}

# copy_secret NAME DEST: the secret NAME from SECRETS_DIR or the server's settings.
copy_secret() {
  local name=$1 dest=$2 var
  var=SC_$(printf '%s' "$1" | tr '[:lower:]' '[:upper:]')
  if [ -n "${SECRETS_DIR:-}" ] && [ -f "$SECRETS_DIR/$name" ]; then
    cp -- "$SECRETS_DIR/$name" "$dest/$name"
  elif [ -n "$(setting "$var")" ]; then
    setting "$var" > "$dest/$name"
  else
    return 1
  fi
}

# The ready file versions of the dump whose object is not in the copy: objects of files deleted
# after the dump (the cleanup job removed them before the copy got there) or lost before it.
missing_objects() {
  pg_restore --data-only --table=file_versions --file=- "$1/database.dump" | awk '
    /^COPY [^ ]*file_versions \(/ {
      cols = $0; sub(/^[^(]*\(/, "", cols); sub(/\).*$/, "", cols)
      n = split(cols, c, ", ")
      for (i = 1; i <= n; i++) { if (c[i] == "blob_key") bk = i; if (c[i] == "status") st = i }
      inside = 1; next
    }
    inside && $0 == "\\." { inside = 0; next }
    inside { split($0, f, "\t"); if (f[st] == "ready") print f[bk] }
  ' | while IFS= read -r key; do
    [ -f "$1/bucket/$key" ] || printf '%s\n' "$key"
  done
}

main() {
  local url partial name objects missing
  url=$(setting SC_DATABASE_URL)
  [ -n "$url" ] || die "set SC_DATABASE_URL or SC_DATABASE_URL_FILE (the embedded mode uses \`secureconnect backup\`)"
  bucket=${SC_S3_BUCKET:-}
  [ -n "$bucket" ] || die "set SC_S3_BUCKET"
  command -v pg_dump > /dev/null || die "pg_dump is not installed (PostgreSQL client tools)"
  pick_tool
  if [ "$tool" = aws ]; then aws_env; fi

  to=${to%/}
  partial="$to.partial"
  if [ -e "$to" ] && [ -n "$(ls -A -- "$to")" ]; then
    die "$to is not empty: back up into a new or empty directory"
  fi
  [ ! -e "$partial" ] || die "$partial exists: a backup is running into it, or one was interrupted (remove it and run again)"
  umask 077
  mkdir -p -- "$partial/secrets" "$partial/bucket"
  # Whatever stops the script before the end (an error, a signal) removes the partial copy.
  trap 'warn "backup failed; removing $partial"; rm -rf -- "$partial"' EXIT

  # 1. The database: pg_dump reads one snapshot (a repeatable-read transaction), so the dump is
  #    consistent while the instances keep writing.
  local created_at
  created_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  pg_dump --format=custom --file="$partial/database.dump" "$url"

  # 2. The objects, after the dump: every object a ready version of the dump names was written
  #    (once, never changed) before the dump, so it is there unless deleted since.
  copy_bucket "$partial/bucket"
  missing=$(missing_objects "$partial")
  if [ -n "$missing" ]; then
    warn "$(printf '%s\n' "$missing" | wc -l) objects named by the dump are not in the copy (files deleted while the backup ran, or lost): listed in backup-info"
  fi

  # 3. The secrets. data_key decrypts every TOTP secret of the dump.
  local secrets=""
  for name in jwt_secret data_key vapid_private_key; do
    if copy_secret "$name" "$partial/secrets"; then
      secrets="$secrets $name"
    else
      if [ "$name" = data_key ]; then
        die "data_key not found (SECRETS_DIR, SC_DATA_KEY or SC_DATA_KEY_FILE): without it the TOTP secrets in the dump are unreadable"
      fi
      warn "$name not found (SECRETS_DIR, SC_${name^^} or SC_${name^^}_FILE): not in the backup"
    fi
  done

  objects=$(find "$partial/bucket" -type f | wc -l)
  {
    echo "format: secureconnect-postgres-s3-backup 1"
    echo "created_at: $created_at"
    echo "pg_dump: $(pg_dump --version)"
    echo "bucket: $bucket (copied with $tool)"
    echo "objects: $objects"
    echo "secrets:$secrets"
    echo "missing_objects:"
    if [ -n "$missing" ]; then printf '%s\n' "$missing" | sed 's/^/  /'; fi
  } > "$partial/backup-info"
  local sums
  sums=$(cd "$partial" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
  printf '%s\n' "$sums" > "$partial/SHA256SUMS"
  chmod -R go-rwx "$partial"
  sync
  trap - EXIT
  if [ -e "$to" ]; then rmdir -- "$to"; fi
  mv -- "$partial" "$to"
  echo "backup complete: $to ($objects objects; secrets:$secrets)"
}

main
