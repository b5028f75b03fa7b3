# nodemgr post-install section for node {{ node }} (shipped common/nodemgr-post.sh).
# POSIX sh: bash in anaconda's %post, sh in the Debian target (late_command), busybox ash in
# an initramfs. Runs the node's postscripts in order with xCAT's environment, fetches the
# postbootscripts for a one-shot first-boot runner, then calls the install-finished URL.
# The first failing postscript is POSTed to the status URL (status=failed&script=<name>)
# and the script stops with exit 1 without calling the install-finished URL.
# NODEMGR_ROOT (default empty) prefixes every path this script writes (tests).
# Keep every line free of a trailing backslash: debconf joins such a line to the next.
{{ env | exports }}
nodemgr_callback={{ callback_url | sh }}
nodemgr_status={{ status_url | sh }}
nodemgr_ps_url={{ postscripts_url | sh }}
nodemgr_root="${NODEMGR_ROOT:-}"

nodemgr_have_curl() {
    command -v curl >/dev/null 2>&1
}

# fetch URL FILE: download URL into FILE (curl, else wget: busybox's has the same options).
fetch() {
    if nodemgr_have_curl; then
        curl -fsS -o "$2" "$1"
    else
        wget -q -O "$2" "$1"
    fi
}

# report URL: GET URL; the answer (one line, e.g. "n1: booted") goes to the log.
report() {
    if nodemgr_have_curl; then
        curl -fsS "$1"
    else
        wget -q -O - "$1"
    fi
}

# post URL DATA: POST DATA (application/x-www-form-urlencoded), the answer discarded.
post() {
    if nodemgr_have_curl; then
        curl -fsS -o /dev/null -d "$2" "$1"
    else
        wget -q -O /dev/null --post-data="$2" "$1"
    fi
}

# retry COMMAND...: up to 5 attempts, 5 s apart (as xCAT's updateflag).
retry() {
    nodemgr_try=1
    until "$@"; do
        [ "$nodemgr_try" -ge 5 ] && return 1
        nodemgr_try=$((nodemgr_try + 1))
        sleep 5
    done
}

# fail NAME QNAME: report NAME (QNAME: URL-encoded) as failed and stop.
fail() {
    echo "nodemgr: $1 failed; install-finished is not called" >&2
    retry post "$nodemgr_status" "status=failed&script=$2" ||
        echo "nodemgr: the failure could not be reported to the status URL" >&2
    exit 1
}

mkdir -p "${TMPDIR:-/tmp}"
nodemgr_work=$(mktemp -d "${TMPDIR:-/tmp}/nodemgr-post.XXXXXX") || exit 1
trap 'rm -rf "$nodemgr_work"' EXIT

# runps NAME QNAME: fetch postscript NAME and run it with sh (working directory: a scratch one).
runps() {
    echo "nodemgr: postscript $1"
    fetch "$nodemgr_ps_url/$2" "$nodemgr_work/$1" || fail "$1" "$2"
    (cd "$nodemgr_work" && sh "./$1") || fail "$1" "$2"
}

# Steps a template adds ahead of the postscripts: shell functions it defines, and names in
# NODEMGR_STEPS, before including this file; a failed step is reported like a postscript.
for nodemgr_step in ${NODEMGR_STEPS:-}; do
    echo "nodemgr: step $nodemgr_step"
    "$nodemgr_step" || fail "$nodemgr_step" "$nodemgr_step"
done

{% for name in postscripts %}
runps {{ name | sh }} {{ name | urlencode | sh }}
{% endfor %}
{% if postbootscripts %}

# postbootscripts: fetched now, run once at first boot by nodemgr-postboot.service.
nodemgr_pb="$nodemgr_root/var/lib/nodemgr/postbootscripts"
mkdir -p "$nodemgr_pb" || fail postbootscripts postbootscripts
{% for name in postbootscripts %}
fetch "$nodemgr_ps_url/"{{ name | urlencode | sh }} "$nodemgr_pb/"{{ name | sh }} ||
    fail {{ name | sh }} {{ name | urlencode | sh }}
{% endfor %}
nodemgr_runner() {
    cat > "$nodemgr_root/var/lib/nodemgr/postboot.sh" <<'NODEMGR_POSTBOOT'
#!/bin/sh
# nodemgr first-boot runner for node {{ node }}: the postbootscripts in order, once (a
# failure is logged, the others still run); then it disables itself.
{{ env | exports }}
R="${NODEMGR_ROOT:-}"
cd "$R/var/lib/nodemgr/postbootscripts" || exit 1
rc=0
for name in {{ postbootscripts | map('sh') | join(' ') }}; do
    echo "nodemgr-postboot: $name"
    sh "./$name" || { echo "nodemgr-postboot: $name failed" >&2; rc=1; }
done
rm -f "$R/etc/systemd/system/multi-user.target.wants/nodemgr-postboot.service"
mv -f "$R/var/lib/nodemgr/postboot.sh" "$R/var/lib/nodemgr/postboot.sh.done"
exit $rc
NODEMGR_POSTBOOT
}
nodemgr_runner || fail postbootscripts postbootscripts
nodemgr_unit() {
    nodemgr_wants="$nodemgr_root/etc/systemd/system/multi-user.target.wants"
    mkdir -p "$nodemgr_wants" || return 1
    cat > "$nodemgr_root/etc/systemd/system/nodemgr-postboot.service" <<'NODEMGR_UNIT' || return 1
[Unit]
Description=nodemgr postbootscripts (first boot only)
Wants=network-online.target
After=network-online.target
ConditionPathExists=/var/lib/nodemgr/postboot.sh

[Service]
Type=oneshot
ExecStart=/bin/sh /var/lib/nodemgr/postboot.sh
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
NODEMGR_UNIT
    ln -sf /etc/systemd/system/nodemgr-postboot.service "$nodemgr_wants/nodemgr-postboot.service"
}
if [ -d "$nodemgr_root/etc/systemd" ]; then
    nodemgr_unit || fail postbootscripts postbootscripts
else
    echo "nodemgr: no /etc/systemd: postbootscripts are in /var/lib/nodemgr, not scheduled" >&2
fi
{% endif %}

echo "nodemgr: postscripts done, calling install-finished"
if ! retry report "$nodemgr_callback"; then
    echo "nodemgr: the install-finished URL could not be reached" >&2
    exit 1
fi
echo "nodemgr: install finished"
