#!/usr/bin/env bash
# Restores a backup made by scripts/backup-postgres-s3.sh into an EMPTY PostgreSQL database and
# an EMPTY bucket, and puts its secrets into a directory, with every instance stopped:
#
#   scripts/restore-postgres-s3.sh --from DIR --secrets-to DIR [--tool aws|mc]
#
# Order: SHA256SUMS is checked before anything is touched; then the secrets, the objects, and
# the database last (in one transaction). Then start the instances with the restored secrets
# (run `secureconnect migrate` first when the binary is newer than the backup). See "Backup and
# restore" in docs/operations.md.
#
# Settings: the same as scripts/backup-postgres-s3.sh (SC_DATABASE_URL[_FILE] and SC_S3_BUCKET
# of the target; SC_S3_ENDPOINT, the AWS_* or SC_S3_* keys for aws, MC_ALIAS for mc).
#
# Needs: pg_restore and psql (PostgreSQL client tools), aws (AWS CLI) or mc (MinIO client),
# sha256sum.
set -euo pipefail

usage() {
  echo "usage: $0 --from DIR --secrets-to DIR [--tool aws|mc]" >&2
  exit 2
}
die() {
  echo "error: $*" >&2
  exit 1
}

from=""
secrets_to=""
tool=""
while [ $# -gt 0 ]; do
  case "$1" in
    --from) from=${2:-}; shift 2 || usage ;;
    --secrets-to) secrets_to=${2:-}; shift 2 || usage ;;
    --tool) tool=${2:-}; shift 2 || usage ;;
    *) usage ;;
  esac
done
if [ -z "$from" ] || [ -z "$secrets_to" ]; then usage; fi

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

# The first key of the bucket, empty when it has none.
first_object() {
  case "$tool" in
    aws) aws "${aws_args[@]}" s3api list-objects-v2 --bucket "$bucket" --max-items 1 \
      --query 'Contents[0].Key' --output text ;;
    mc) mc ls --recursive "${MC_ALIAS:-sc}/$bucket" | head -n 1 || true ;;
  esac
}

upload_bucket() {
  case "$tool" in
    aws) aws "${aws_args[@]}" s3 sync --only-show-errors "$from/bucket" "s3://$bucket" ;;
    mc) mc mirror --quiet "$from/bucket" "${MC_ALIAS:-sc}/$bucket" ;;
  esac
}

main() {
  local url first tables name
  from=${from%/}
  case "$from" in *.partial) die "$from is an incomplete backup (the backup writing it did not finish)" ;; esac
  if [ ! -f "$from/SHA256SUMS" ] || [ ! -f "$from/database.dump" ]; then
    die "$from is not a complete backup made by scripts/backup-postgres-s3.sh"
  fi
  url=$(setting SC_DATABASE_URL)
  [ -n "$url" ] || die "set SC_DATABASE_URL or SC_DATABASE_URL_FILE to the (empty) target database"
  bucket=${SC_S3_BUCKET:-}
  [ -n "$bucket" ] || die "set SC_S3_BUCKET to the (empty) target bucket"
  if ! command -v pg_restore > /dev/null || ! command -v psql > /dev/null; then
    die "pg_restore and psql are needed (PostgreSQL client tools)"
  fi
  pick_tool
  if [ "$tool" = aws ]; then aws_env; fi

  # 1. Every file as the backup wrote it, before anything is touched.
  (cd "$from" && sha256sum --check --quiet --strict SHA256SUMS) \
    || die "$from does not match its SHA256SUMS: the backup is damaged or was altered; nothing was restored"
  [ -f "$from/secrets/data_key" ] \
    || die "$from has no secrets/data_key: set the deployment's data_key by hand before starting"

  # 2. The targets are empty: a restore never merges into a live deployment.
  tables=$(psql "$url" --no-psqlrc -Atc \
    "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
  [ "$tables" = 0 ] || die "the target database has $tables tables: restore into a new, empty database"
  first=$(first_object)
  if [ -n "$first" ] && [ "$first" != None ]; then
    die "the bucket $bucket is not empty ($first): restore into a new, empty bucket"
  fi
  mkdir -p -- "$secrets_to"
  chmod 0700 "$secrets_to"
  for name in jwt_secret data_key vapid_private_key; do
    if [ -f "$from/secrets/$name" ] && [ -e "$secrets_to/$name" ] \
      && ! cmp -s "$from/secrets/$name" "$secrets_to/$name"; then
      die "$secrets_to/$name exists with another value: restore the secrets into a new directory"
    fi
  done

  # 3. Secrets, objects, then the database in one transaction.
  for name in jwt_secret data_key vapid_private_key; do
    if [ -f "$from/secrets/$name" ]; then
      install -m 0600 -- "$from/secrets/$name" "$secrets_to/$name"
    fi
  done
  upload_bucket
  pg_restore --exit-on-error --single-transaction --no-owner --no-privileges \
    --dbname="$url" "$from/database.dump"

  echo "restored $from into the database and s3://$bucket; secrets in $secrets_to"
  echo "point SC_JWT_SECRET_FILE, SC_DATA_KEY_FILE and SC_VAPID_PRIVATE_KEY_FILE of every instance there,"
  echo "run \`secureconnect migrate\` if this binary is newer than the backup, then start the instances"
  if grep -q '^  ' "$from/backup-info" 2> /dev/null; then
    echo "warning: the backup lists missing objects (backup-info): their downloads will fail" >&2
  fi
}

main
