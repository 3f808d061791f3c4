#!/usr/bin/env bash
# Writes the settings docker-compose.yml requires into an env file (default: .env beside
# docker-compose.yml, which compose reads by itself), every secret a fresh random value.
#
#     deploy/make-env.sh            # creates or completes ./.env
#     deploy/make-env.sh path/.env  # another file (then: docker compose --env-file path/.env ...)
#
# Settings already in the file are kept; only missing ones are added. So after adding a service
# under services/, running it again adds that service's database password and nothing else.
# Secrets are hex: safe inside the postgresql:// and amqp:// URLs compose builds from them.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${1:-$root/.env}"

secret() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }

umask 077
if [[ ! -e "$target" ]]; then
    printf '# Settings of the CRM stack, written by deploy/make-env.sh. Secrets: keep private, never commit.\n' > "$target"
fi
chmod 600 "$target"

added=0
put() {  # put NAME VALUE: append NAME=VALUE unless NAME is already set in the file
    if ! grep -q "^$1=" "$target"; then
        printf '%s=%s\n' "$1" "$2" >> "$target"
        added=$((added + 1))
    fi
}

put COMPOSE_PROJECT_NAME crm
put CRM_ADMIN_USERNAME admin
put CRM_ADMIN_PASSWORD "$(secret)"
put CRM_JWT_SECRET "$(secret)$(secret)"
put CRM_RABBITMQ_USER crm
put CRM_RABBITMQ_PASSWORD "$(secret)"
put CRM_POSTGRES_PASSWORD "$(secret)"
put CRM_GATEWAY_DB_PASSWORD "$(secret)"
put CRM_GRAFANA_ADMIN_USER admin
put CRM_GRAFANA_ADMIN_PASSWORD "$(secret)"
for dir in "$root"/services/*/; do
    [[ -d "$dir" ]] || continue
    # services/service-desk -> CRM_SERVICE_DESK_DB_PASSWORD (tr, not ${x^^}: macOS ships bash 3)
    name="$(basename "$dir" | tr '[:lower:]-' '[:upper:]_')"
    put "CRM_${name}_DB_PASSWORD" "$(secret)"
done

echo "make-env: $added setting(s) added to $target (the admin password is CRM_ADMIN_PASSWORD there)" >&2
