#!/bin/sh
# First start of the Compose database only: the app's own role, which owns nothing (README,
# "Database roles"); `vru db upgrade` grants it the use of the tables.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v app_password="$VRU_APP_PASSWORD" <<'SQL'
CREATE ROLE vru_app LOGIN PASSWORD :'app_password';
SQL
