#!/usr/bin/env bash
# Starts an OpenLDAP provider and a consumer replicating from it (syncrepl, refreshAndPersist)
# on loopback, as a configuration in DIR (no system files touched), and loads the base entries.
#   tests/ldap/pair.sh DIR PROVIDER_PORT CONSUMER_PORT [LDAPS_PORT]
# With LDAPS_PORT the provider also speaks TLS: ldaps:// there and StartTLS on PROVIDER_PORT, with
# the test-only certificate of tests/fixtures/tls (issued to 127.0.0.1 by a CA of its own).
# Both run until killed: their pids are in DIR/provider.pid and DIR/consumer.pid.
# Suffix dc=example,dc=test; admin cn=admin,dc=example,dc=test, password in DIR/admin.pw.
# Both load the ppolicy overlay with a default policy that enforces account locks
# (pwdAccountLockedTime), so a disabled account cannot bind on either.
# PAIR_INDEX (optional, e.g. "cn") adds an equality index of those attributes on both, for a caller
# that searches by them (benches/vs_ldclt.py: each search otherwise scans every entry); unset,
# nothing changes.
set -euo pipefail
DIR=$1 PPORT=$2 CPORT=$3 LPORT=${4:-}
FIXTURES="$(cd "$(dirname "$0")/../fixtures/tls" && pwd)"
SLAPD=$(command -v slapd || echo /usr/sbin/slapd)
SCHEMA=/etc/ldap/schema
MODULES=/usr/lib/ldap
mkdir -p "$DIR/provider-db" "$DIR/consumer-db"
PW="pb-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
printf '%s' "$PW" > "$DIR/admin.pw"
chmod 600 "$DIR/admin.pw"
common() {
  cat <<CONF
include $SCHEMA/core.schema
include $SCHEMA/cosine.schema
include $SCHEMA/nis.schema
include $SCHEMA/inetorgperson.schema
modulepath $MODULES
moduleload back_mdb
CONF
}
# The map is an upper bound of address space, not memory or disk (the file grows as entries are
# written): at 100 MB the provider filled it after about 100,000 entries, and every add then
# failed with LDAP 80 (txn_commit failed). 16 GiB holds millions of entries of a long run.
MAXSIZE=17179869184
{
  common
  if [ -n "$LPORT" ]; then
    cat <<CONF
TLSCACertificateFile $FIXTURES/ca.pem
TLSCertificateFile $FIXTURES/server.pem
TLSCertificateKeyFile $FIXTURES/server.key
CONF
  fi
  cat <<CONF
moduleload syncprov
moduleload ppolicy
pidfile $DIR/provider.pid
database mdb
maxsize $MAXSIZE
suffix "dc=example,dc=test"
rootdn "cn=admin,dc=example,dc=test"
rootpw $PW
directory $DIR/provider-db
index objectClass,uid eq
index entryCSN,entryUUID eq
${PAIR_INDEX:+index $PAIR_INDEX eq}
overlay syncprov
syncprov-checkpoint 100 10
overlay ppolicy
ppolicy_default "cn=default,ou=policies,dc=example,dc=test"
CONF
} > "$DIR/provider.conf"
{
  common
  cat <<CONF
moduleload ppolicy
pidfile $DIR/consumer.pid
database mdb
maxsize $MAXSIZE
suffix "dc=example,dc=test"
rootdn "cn=admin,dc=example,dc=test"
rootpw $PW
directory $DIR/consumer-db
index objectClass,uid eq
index entryCSN,entryUUID eq
${PAIR_INDEX:+index $PAIR_INDEX eq}
syncrepl rid=001 provider=ldap://127.0.0.1:$PPORT type=refreshAndPersist retry="1 +" searchbase="dc=example,dc=test" bindmethod=simple binddn="cn=admin,dc=example,dc=test" credentials=$PW
overlay ppolicy
ppolicy_default "cn=default,ou=policies,dc=example,dc=test"
CONF
} > "$DIR/consumer.conf"
LISTEN="ldap://127.0.0.1:$PPORT/"
[ -n "$LPORT" ] && LISTEN="$LISTEN ldaps://127.0.0.1:$LPORT/"
"$SLAPD" -f "$DIR/provider.conf" -h "$LISTEN"
"$SLAPD" -f "$DIR/consumer.conf" -h "ldap://127.0.0.1:$CPORT/"
for _ in $(seq 1 100); do
  ldapsearch -x -H "ldap://127.0.0.1:$PPORT" -b "" -s base >/dev/null 2>&1 && break
  sleep 0.1
done
ldapadd -x -H "ldap://127.0.0.1:$PPORT" -D "cn=admin,dc=example,dc=test" -y "$DIR/admin.pw" >/dev/null <<LDIF
dn: dc=example,dc=test
objectClass: dcObject
objectClass: organization
dc: example
o: provbench test directory

dn: ou=people,dc=example,dc=test
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=test
objectClass: organizationalUnit
ou: groups

dn: ou=policies,dc=example,dc=test
objectClass: organizationalUnit
ou: policies

dn: cn=default,ou=policies,dc=example,dc=test
objectClass: person
objectClass: pwdPolicy
cn: default
sn: default
pwdAttribute: userPassword
pwdLockout: TRUE
LDIF
# The consumer is ready once it holds the base entries (a run's pre-flight reads its base DN).
for _ in $(seq 1 200); do
  ldapsearch -x -H "ldap://127.0.0.1:$CPORT" -D "cn=admin,dc=example,dc=test" -y "$DIR/admin.pw" \
    -s base -b "cn=default,ou=policies,dc=example,dc=test" dn >/dev/null 2>&1 && exit 0
  sleep 0.1
done
echo "the consumer did not replicate the base entries within 20 s" >&2
exit 1
