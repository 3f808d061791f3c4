#!/usr/bin/env bash
# One database and one login role per CRM service and the gateway, each role owning only its own
# database: a service can never read or write another service's data.
#
# The postgres image runs this by itself the first time it starts on an empty volume. It is
# idempotent, so after adding a service (or to change a password) run it again on a live server:
#     docker compose up -d postgres
#     docker compose exec postgres /docker-entrypoint-initdb.d/10-crm-databases.sh
#
#   CRM_DATABASES           space-separated names, e.g. "gateway customer sales service_desk"
#   CRM_<NAME>_DB_PASSWORD  the password of role <name> (NAME upper-cased), one per name
#
# No `set -u`: when the file is not executable the image sources it into its own entrypoint.
set -eo pipefail

crm_create_database() {
    local name="$1" var password
    if [[ ! "$name" =~ ^[a-z][a-z0-9_]*$ ]]; then
        echo "crm-databases: '$name' is not a valid database name (a-z, 0-9, _)" >&2
        return 1
    fi
    var="CRM_$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]')_DB_PASSWORD"
    password="${!var:-}"
    if [[ -z "$password" ]]; then
        echo "crm-databases: $var is not set, cannot create role '$name'" >&2
        return 1
    fi
    # Names and the password go in as psql variables and are quoted by format(%I, %L) on the
    # server, so no value is ever pasted into SQL text. \gexec runs each generated statement.
    psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet \
        --username "${POSTGRES_USER:-postgres}" --dbname postgres \
        --set=name="$name" --set=password="$password" <<'EOSQL'
SELECT format('CREATE ROLE %I LOGIN', :'name')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'name', :'password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'name')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', :'name', :'name') \gexec
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', :'name') \gexec
EOSQL
    echo "crm-databases: database and role '$name' ready"
}

if [[ -z "${CRM_DATABASES// /}" ]]; then
    echo "crm-databases: CRM_DATABASES is empty, no service database created" >&2
    exit 1
fi
for crm_database in $CRM_DATABASES; do
    crm_create_database "$crm_database"
done
