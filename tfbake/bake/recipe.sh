#!/usr/bin/env bash
# tfbake's on-builder recipe: prepare a fresh instance to become a container-host AMI.
#
# Runs as root through an SSM Command document. Its inputs arrive only as environment variables
# (the document's parameters, interpolationType ENV_VAR), so no value is ever spliced into this
# text and the file contains no SSM placeholders:
#   SSM_Images                       space-separated pinned references registry/repo[:tag]@digest
#   SSM_Provision                    base64 of the provision commands, each ended by a NUL byte
#   SSM_RegistryCredentialsParameter SecureString parameter holding a Docker `auths` object, or ""
#   SSM_EcrRegistries                space-separated ECR registry hosts to log in to, or ""
#   SSM_Region                       the AWS region of the bake
#   SSM_Runtime                      the image store to pull into: docker (the default) or containerd
#   SSM_ContainerdNamespace          containerd's namespace for the images (k8s.io, the kubelet's)
#   SSM_AnsibleBundle                base64 of a gzip tar of the playbook's files, or ""
#   SSM_AnsiblePlaybook              the playbook to run, a path inside the bundle, or ""
#   SSM_AnsibleExtraVars             the playbook's extra variables as a JSON object, or ""
#   SSM_FullOutput                   "true" when the output also goes to CloudWatch Logs
# Every absolute path is prefixed by TFBAKE_ROOT (empty on a builder) so tests can run the recipe
# against a scratch directory, with stand-ins for docker, systemctl and the like first on PATH.
#
# All output goes to one stream in order (stderr is merged into stdout), and the last lines name
# what failed: the tail of this output is what a user sees when a bake fails.

# The SSM agent may start the script with sh; everything below needs bash.
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi

set -euo pipefail
exec 2>&1

root="${TFBAKE_ROOT:-}"
root="${root%/}"

# Docker reads credentials from here whatever HOME is (the SSM agent does not always set HOME).
# /run is a tmpfs: registry credentials never touch the volume that becomes the AMI, where a
# deleted file's blocks would stay in the snapshot.
export DOCKER_CONFIG="$root/run/tfbake-docker"
# containerd's registry settings for ctr (--hosts-dir), credentials included: on /run too.
containerd_hosts="$root/run/tfbake-containerd-hosts"
cri_pinned_label="io.cri-containerd.pinned=pinned"
export DEBIAN_FRONTEND=noninteractive

ssm_unit_candidates=(amazon-ssm-agent.service snap.amazon-ssm-agent.amazon-ssm-agent.service)
shutdown_cleanup_unit="tfbake-shutdown-cleanup.service"
ssh_host_keys_unit="tfbake-ssh-host-keys.service"

# The same grammar as tfbake/model/reference.py, restricted to normalised, pinned references: the
# registry is explicit and the digest is lower-case hex of the algorithm's exact length.
re_host_component='[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?'
re_registry="(${re_host_component}(\\.${re_host_component})*|\\[[0-9a-fA-F:.]+\\])(:[0-9]+)?"
re_path_component='[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*'
re_repository="${re_path_component}(/${re_path_component})*"
re_tag='[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}'
re_digest='(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})'
re_pinned="^(${re_registry}/${re_repository})(:(${re_tag}))?@(${re_digest})$"
re_ecr_host='^[0-9]{12}\.dkr\.ecr(-fips)?\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$'
re_region='^[a-z]{2}(-[a-z]+)+-[0-9]+$'
re_parameter_name='^[A-Za-z0-9_.:/-]{1,2048}$'
# The same as tfbake/model/patterns.py's CONTAINERD_NAMESPACE_RE.
re_namespace='^[A-Za-z0-9]+([._-][A-Za-z0-9]+)*$'
# Registries reached over plain HTTP, as Docker and containerd do by default: loopback only.
re_loopback_host='^(localhost|127\.[0-9.]+|\[::1\])(:[0-9]+)?$'
# The same as tfbake/model/patterns.py's PLAYBOOK_RE: relative, and no component starts with '.' or '-'.
re_playbook='^[A-Za-z0-9_][A-Za-z0-9_.@+-]*(/[A-Za-z0-9_][A-Za-z0-9_.@+-]*){0,31}$'

say() { printf 'tfbake: %s\n' "$*"; }

# One line per timed part of the recipe, for the client's time breakdown (tfbake/bake/timing.py
# parses it): "tfbake: timed <part> <what> <seconds> s", seconds with three decimals; the parts
# are "pull" (of each image reference), "pulls" (all of them, side by side) and "install" (of
# the runtime).
say_timed() { say "timed $1 $2 $3 s"; }

# Microseconds since the epoch: bash 5's clock, without a process per reading.
now_micros() {
    local now="${EPOCHREALTIME:-}"
    if [[ -n "$now" ]]; then printf '%s\n' "${now/[.,]/}"; else date +%s%6N; fi
}

# Seconds since $1 (a now_micros reading), with three decimals.
seconds_since() {
    local micros=$(($(now_micros) - $1))
    printf '%d.%03d\n' $((micros / 1000000)) $((micros % 1000000 / 1000))
}

fail() {
    printf 'tfbake: error: %s\n' "$*"
    exit 1
}

workdir=""
ansible_dir=""

remove_credentials() {
    rm -rf "$DOCKER_CONFIG" "$containerd_hosts"
    rm -f "$root/root/.docker/config.json"
    # State kept by Docker credential helpers (amazon-ecr-credential-helper's token cache).
    rm -rf "$root/root/.ecr"
}

on_exit() {
    local status=$?
    remove_credentials
    if [[ -n "$workdir" ]]; then rm -rf "$workdir"; fi
    # The playbook's files are no part of the image, whether the bake succeeded or not.
    if [[ -n "$ansible_dir" ]]; then rm -rf "$ansible_dir"; fi
    if ((status != 0)); then
        say "bake failed (exit status $status); registry credentials removed"
    fi
    finish_bounded_output "$status"
    exit "$status"
}
trap on_exit EXIT

# ---- output AWS keeps -------------------------------------------------------------------------
# Run Command keeps only the first 24,000 characters of a command's output, and a failure is
# printed last. So the output passes through a filter that stops after output_budget characters,
# and at exit a short summary (the last step begun, the error, the last lines) follows: the
# part AWS keeps always ends with why the bake failed. When the output also goes to CloudWatch
# Logs (SSM_FullOutput=true: the image set names a log group), it is left whole: the log holds
# the real end.
output_budget=20000
output_log=""
output_filter=""

start_bounded_output() {
    output_log="$(mktemp)"
    exec 3>&1
    exec > >(bounded_copy "$output_log" >&3) 2>&1
    output_filter=$!
}

# Copies every line to the log, and to stdout while the budget lasts. Plain bash: it runs
# before anything is installed.
bounded_copy() {
    local line shown=0
    while IFS= read -r line || [[ -n "$line" ]]; do
        printf '%s\n' "$line" >>"$1"
        if ((shown < output_budget)); then
            printf '%s\n' "$line"
            shown=$((shown + ${#line} + 1))
        fi
    done
}

finish_bounded_output() {
    [[ -n "$output_log" ]] || return 0
    exec 1>&3 2>&1
    wait "$output_filter" 2>/dev/null || true
    local size
    size="$(stat -c %s "$output_log")"
    if ((size > output_budget || $1 != 0)); then
        printf '\ntfbake: summary: %s characters of output\n' "$size"
        printf 'tfbake: summary: last step: %s\n' "$(sed -n '/^tfbake: error: /d; /^tfbake: bake failed/d; s/^tfbake: //p' "$output_log" | tail -n 1 | cut -c 1-300)"
        sed -n 's/^tfbake: error: /tfbake: summary: tfbake: error: /p' "$output_log" | tail -n 3 | cut -c 1-300
        printf 'tfbake: summary: last lines:\n'
        tail -n 8 "$output_log" | cut -c 1-200
    fi
    rm -f "$output_log"
    output_log=""
}

# ---- inputs -------------------------------------------------------------------------------

runtime=docker
namespace=""
images=()
names=()
tags=()
digests=()
ecr_hosts=()
provision=()

read_inputs() {
    local region="${SSM_Region:-}"
    [[ "$region" =~ $re_region ]] || fail "SSM_Region is not an AWS region: '$region'"

    runtime="${SSM_Runtime:-docker}"
    [[ "$runtime" == docker || "$runtime" == containerd ]] ||
        fail "SSM_Runtime is not docker or containerd: '$runtime'"
    namespace="${SSM_ContainerdNamespace:-k8s.io}"
    [[ "$namespace" =~ $re_namespace && ${#namespace} -le 76 ]] ||
        fail "SSM_ContainerdNamespace is not a containerd namespace: '$namespace'"

    # Split on any whitespace, newlines included (read -a alone stops at the first newline).
    local ref
    read -r -d '' -a images <<<"${SSM_Images:-}" || true
    ((${#images[@]} > 0)) || fail "SSM_Images is empty: nothing to bake"
    for ref in "${images[@]}"; do
        [[ "$ref" =~ $re_pinned ]] ||
            fail "invalid image reference in SSM_Images: '$ref'" \
                "(expected registry/repository[:tag]@sha256:<64 hex>)"
        local name="${BASH_REMATCH[1]}" name_and_tag="${ref%@*}"
        local tag="${name_and_tag#"$name"}"
        names+=("$name")
        tags+=("${tag#:}")
        digests+=("${ref##*@}")
    done

    local host
    read -r -d '' -a ecr_hosts <<<"${SSM_EcrRegistries:-}" || true
    for host in "${ecr_hosts[@]}"; do
        [[ "$host" =~ $re_ecr_host ]] || fail "invalid ECR registry host in SSM_EcrRegistries: '$host'"
    done

    local parameter="${SSM_RegistryCredentialsParameter:-}"
    if [[ -n "$parameter" && ! "$parameter" =~ $re_parameter_name ]]; then
        fail "invalid SSM parameter name in SSM_RegistryCredentialsParameter: '$parameter'"
    fi

    # Commands are NUL-terminated so that any text, newlines and quotes included, survives.
    if [[ -n "${SSM_Provision:-}" ]]; then
        local decoded="$workdir/provision" cmd
        base64 -d >"$decoded" <<<"$SSM_Provision" || fail "SSM_Provision is not valid base64"
        while IFS= read -r -d '' cmd; do
            provision+=("$cmd")
        done <"$decoded"
        [[ -z "$cmd" ]] || fail "SSM_Provision: the last command is not terminated by a NUL byte"
    fi

    local playbook="${SSM_AnsiblePlaybook:-}"
    if [[ -n "${SSM_AnsibleBundle:-}" ]]; then
        [[ "$playbook" =~ $re_playbook ]] ||
            fail "invalid playbook in SSM_AnsiblePlaybook: '$playbook' (expected a relative path)"
    elif [[ -n "$playbook" ]]; then
        fail "SSM_AnsiblePlaybook is set but SSM_AnsibleBundle is empty"
    fi
}

# ---- Docker and the SSM agent -------------------------------------------------------------

os_release_field() {
    local field="$1" line
    while IFS= read -r line; do
        if [[ "$line" == "$field="* ]]; then
            line="${line#"$field="}"
            line="${line#[\"\']}"
            printf '%s\n' "${line%[\"\']}"
            return 0
        fi
    done <"$root/etc/os-release"
}

# ---- packages ------------------------------------------------------------------------------

wait_for_first_boot() {
    # On an instance's first boot cloud-init may still be configuring it; what it installs
    # holds the package manager's locks.
    if command -v cloud-init >/dev/null 2>&1; then
        cloud-init status --wait >/dev/null 2>&1 || true
    fi
}

apt_install() {
    # apt's daily jobs run at a first boot too: the dpkg lock is waited for, and the lists
    # lock, which has no such option, by retrying the update.
    local attempt
    for attempt in 1 2 3 4 5 6 7 8 9 10 11 12; do
        if apt-get -o DPkg::Lock::Timeout=300 update -qq; then
            break
        fi
        ((attempt < 12)) || fail "apt-get update failed $attempt times"
        say "apt-get update failed (attempt $attempt); retrying in 5 s"
        sleep 5
    done
    # No recommends: the image carries what the containers need, nothing more.
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "$@"
}

clean_package_caches() {
    # Downloaded packages and package lists are large and the next boot does not need them.
    if command -v apt-get >/dev/null 2>&1; then
        apt-get clean
        rm -rf "$root"/var/lib/apt/lists/*
    fi
    if command -v dnf >/dev/null 2>&1; then dnf clean all -q; fi
    say "package caches cleaned"
}

# Installs the package that provides a command, where the command is missing: $1 the command,
# $2 its name in the output and timing, $3 the Debian package, $4 the Amazon Linux package.
install_runtime() {
    local command="$1" what="$2" deb="$3" rpm="$4"
    if command -v "$command" >/dev/null 2>&1; then
        say "$what is installed"
        return 0
    fi
    [[ -r "$root/etc/os-release" ]] || fail "$what is missing and /etc/os-release is unreadable"
    local id id_like started
    started="$(now_micros)"
    id="$(os_release_field ID)"
    id_like="$(os_release_field ID_LIKE)"
    case " $id $id_like " in
        *" debian "* | *" ubuntu "*)
            say "installing $what with apt-get ($id)"
            apt_install "$deb"
            ;;
        *" amzn "*)
            say "installing $what with dnf ($id)"
            dnf install -y -q --setopt=install_weak_deps=False "$rpm"
            ;;
        *)
            fail "$what is missing and the OS '$id' is not supported;" \
                "use a Debian, Ubuntu or Amazon Linux base AMI, or one with $what installed"
            ;;
    esac
    command -v "$command" >/dev/null 2>&1 || fail "$what was installed but '$command' is not on PATH"
    say_timed install "${what,,}" "$(seconds_since "$started")"
}

install_image_store() {
    if [[ "$runtime" == containerd ]]; then
        # ctr comes with containerd in every distribution's package.
        install_runtime ctr containerd containerd containerd
    else
        install_runtime docker Docker docker.io docker
    fi
}

unit_exists() {
    [[ -n "$(systemctl list-unit-files --no-legend --no-pager "$1" 2>/dev/null)" ]]
}

ssm_agent_unit() {
    local unit
    for unit in "${ssm_unit_candidates[@]}"; do
        if unit_exists "$unit"; then
            printf '%s\n' "$unit"
            return 0
        fi
    done
    return 1
}

# A unit's own last words, bounded in lines, width and time: what dockerd or containerd said as
# it died. On EC2 nobody can read the journal of a builder that is already terminated, and
# systemd's "see journalctl" says nothing to the user reading the failure report.
unit_journal() {
    timeout 20 journalctl --unit "$1" --no-pager --lines 20 --output cat 2>/dev/null |
        cut -c 1-300 || true
}

unit_last_word() {
    timeout 20 journalctl "_SYSTEMD_UNIT=$1" --no-pager --lines 1 --output cat 2>/dev/null |
        cut -c 1-300 || true
}

# Starts a container runtime's unit now and at every boot, or fails quoting why it would not
# start. The units it needs come first: a containerd that died takes docker.service with it.
start_runtime() {
    local unit="$1" failed reason
    shift
    systemctl enable --now "$unit" && return 0
    for failed in "$@" "$unit"; do
        systemctl is-failed --quiet "$failed" || [[ "$failed" == "$unit" ]] || continue
        say "$failed did not start; the last lines of its journal:"
        unit_journal "$failed" | sed 's/^/    /'
        reason="$(unit_last_word "$failed")"
        fail "$failed did not start: ${reason:-its journal holds no message of its own}"
    done
}

enable_services() {
    if [[ "$runtime" == containerd ]]; then
        start_runtime containerd.service
        say "containerd enabled at boot"
    else
        start_runtime docker.service containerd.service
        say "Docker enabled at boot"
    fi
    local unit
    unit="$(ssm_agent_unit)" ||
        fail "no SSM agent unit found (${ssm_unit_candidates[*]}); the AMI would be unmanageable"
    systemctl enable "$unit"
    say "SSM agent enabled at boot ($unit)"
}

# ---- registries ---------------------------------------------------------------------------

require_memory_backed() {
    # On a builder (not under a test's scratch root), /run must be a tmpfs, or credentials
    # would be written to the disk that becomes the image.
    [[ -z "$root" ]] || return 0
    local kind
    kind="$(stat -f -c %T /run)" || fail "cannot tell what file system /run is"
    [[ "$kind" == tmpfs ]] ||
        fail "/run is $kind, not a tmpfs: registry credentials would reach the image's disk"
}

# Registry credentials, for the runtime that pulls: Docker's config.json, or ctr's hosts
# directory (containerd reads no Docker config). Both live on /run and go before any provision
# command runs.
log_in_to_registries() {
    local parameter="${SSM_RegistryCredentialsParameter:-}"
    ((${#ecr_hosts[@]} > 0)) || [[ -n "$parameter" ]] || return 0
    require_memory_backed
    rm -rf "$DOCKER_CONFIG"
    mkdir -p "$root/run" || fail "cannot create $root/run"
    mkdir -m 700 "$DOCKER_CONFIG" || fail "cannot create $DOCKER_CONFIG"
    if [[ "$runtime" == containerd ]]; then
        rm -rf "$containerd_hosts"
        mkdir -m 700 "$containerd_hosts" || fail "cannot create $containerd_hosts"
    fi
    if [[ -n "$parameter" ]]; then
        say "reading registry credentials from SSM parameter $parameter"
        # The secret goes from the AWS CLI straight into a private file: it is never in a
        # variable, an argument or xtrace output. Each step is checked on its own: inside a
        # subshell or a group that is followed by ||, bash does not stop at a failure.
        local auths="$DOCKER_CONFIG/auths.json" config="$DOCKER_CONFIG/config.json"
        (umask 077 && : >"$auths" && : >"$config") || fail "cannot create $config"
        aws ssm get-parameter --region "$SSM_Region" --name "$parameter" \
            --with-decryption --query Parameter.Value --output text >"$auths" ||
            fail "cannot read registry credentials from SSM parameter $parameter"
        [[ -s "$auths" ]] || fail "SSM parameter $parameter is empty"
        if [[ "$runtime" == containerd ]]; then
            containerd_hosts_from_auths "$auths"
        else
            { printf '{"auths": ' && cat "$auths" && printf '}\n'; } >"$config" ||
                fail "cannot write $config"
        fi
        rm -f "$auths"
    fi
    local host region
    for host in "${ecr_hosts[@]}"; do
        [[ "$host" =~ $re_ecr_host ]]
        # An ECR registry may live in another region than the bake.
        region="${BASH_REMATCH[2]}"
        say "logging in to $host with the instance role"
        if [[ "$runtime" == containerd ]]; then
            containerd_ecr_host "$host" "$region"
        else
            aws ecr get-login-password --region "$region" |
                docker login --username AWS --password-stdin "$host" >/dev/null ||
                fail "cannot log in to ECR registry $host (does the instance role allow ecr:GetAuthorizationToken?)"
        fi
    done
}

# ---- containerd's registry hosts ------------------------------------------------------------
# ctr takes credentials only as an argument (--user), which any process on the host can read.
# Instead each registry gets a hosts.toml in a private directory on /run with an Authorization
# header: HTTP Basic, which ECR and registries with password files accept. A registry that
# answers only with a token challenge (Docker Hub, GHCR) cannot be reached this way; the
# docs say to mirror such images into ECR.

# The server URL ctr uses for a registry host: Docker Hub's API host, plain HTTP on loopback.
registry_server() {
    case "$1" in
        docker.io) printf 'https://registry-1.docker.io\n' ;;
        *) if [[ "$1" =~ $re_loopback_host ]]; then printf 'http://%s\n' "$1"; else printf 'https://%s\n' "$1"; fi ;;
    esac
}

# Writes $containerd_hosts/<host>/hosts.toml; the header's value (base64 of user:password) is
# read from stdin, so it is never an argument.
write_containerd_host() {
    local host="$1" server directory
    server="$(registry_server "$host")"
    directory="$containerd_hosts/$host"
    mkdir -m 700 "$directory" || fail "cannot create $directory"
    (
        umask 077
        {
            printf 'server = "%s"\n[host."%s"]\n  capabilities = ["pull", "resolve"]\n' \
                "$server" "$server"
            printf '  [host."%s".header]\n    Authorization = "Basic ' "$server"
            tr -d '\n'
            printf '"\n'
        } >"$directory/hosts.toml"
    ) || fail "cannot write $directory/hosts.toml"
}

containerd_ecr_host() {
    local host="$1" region="$2"
    { printf 'AWS:' && aws ecr get-login-password --region "$region" | tr -d '\n'; } |
        base64 -w 0 | write_containerd_host "$host" ||
        fail "cannot log in to ECR registry $host (does the instance role allow ecr:GetAuthorizationToken?)"
}

# The credentials parameter holds a Docker `auths` object; each entry's "auth" (or its
# username and password) becomes a host's header. JSON needs a parser: python3, which
# cloud-init needs and so every cloud image has.
containerd_hosts_from_auths() {
    command -v python3 >/dev/null 2>&1 ||
        fail "python3 is missing: it reads the registry credentials for containerd"
    local entries="$DOCKER_CONFIG/entries"
    (umask 077 && python3 -c '
import base64, json, re, sys
auths = json.load(open(sys.argv[1]))
if not isinstance(auths, dict):
    sys.exit("the credentials parameter is not a JSON object of registries")
seen = set()
for key, entry in auths.items():
    host = re.sub(r"^[a-z]+://", "", str(key)).split("/")[0]
    host = "docker.io" if host in ("index.docker.io", "registry-1.docker.io") else host
    if host in seen:
        continue
    seen.add(host)
    label = "[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
    if not re.fullmatch(r"(%s(\.%s)*|\[[0-9a-fA-F:.]+\])(:[0-9]+)?" % (label, label), host):
        sys.exit("the credentials parameter names a registry that is not a host[:port]")
    entry = entry if isinstance(entry, dict) else {}
    auth = entry.get("auth") or base64.b64encode(
        ("%s:%s" % (entry.get("username", ""), entry.get("password", ""))).encode()).decode()
    if not re.fullmatch(r"[A-Za-z0-9+/]+=*", auth):
        sys.exit("the credentials parameter holds an auth that is not base64")
    print(host, auth)
' "$1" >"$entries") || fail "cannot read the registry credentials for containerd"
    local host auth
    while read -r host auth; do
        # printf is bash's own: the value is never a program's argument.
        printf '%s' "$auth" | write_containerd_host "$host" || exit 1
        say "registry credentials for $host written for containerd"
    done <"$entries"
    rm -f "$entries"
}

# ---- images -------------------------------------------------------------------------------

pinned_name() { printf '%s@%s\n' "${names[$1]}" "${digests[$1]}"; }

timed_pull() {
    local i="$1" started status=0
    started="$(now_micros)"
    if [[ "$runtime" == containerd ]]; then
        local hosts=()
        if [[ -d "$containerd_hosts" ]]; then hosts=(--hosts-dir "$containerd_hosts"); fi
        # Pinned: the CRI plugin (containerd 1.7 and later) reports the image pinned, and the
        # kubelet's image garbage collection passes over it; older releases ignore the label.
        ctr --namespace "$namespace" images pull "${hosts[@]}" --label "$cri_pinned_label" \
            "$(pinned_name "$i")" >"$workdir/pull.$i.log" 2>&1 || status=$?
    else
        docker pull --quiet "$(pinned_name "$i")" >"$workdir/pull.$i.log" 2>&1 || status=$?
    fi
    seconds_since "$started" >"$workdir/pull.$i.seconds"
    return "$status"
}

pull_images() {
    say "pulling ${#images[@]} images"
    local i pids=() started
    started="$(now_micros)"
    for i in "${!images[@]}"; do
        timed_pull "$i" &
        pids[i]=$!
    done
    # Wait for every pull, so that all failures are reported, not only the first.
    local failures=()
    for i in "${!images[@]}"; do
        if wait "${pids[$i]}"; then
            say "pulled ${images[$i]}"
            say_timed pull "${images[$i]}" "$(<"$workdir/pull.$i.seconds")"
        else
            say "pull failed: ${images[$i]}"
            tail -n 5 "$workdir/pull.$i.log" | sed 's/^/    /'
            failures+=("${images[$i]}")
        fi
    done
    if ((${#failures[@]} > 0)); then
        fail "${#failures[@]} of ${#images[@]} image pulls failed: ${failures[*]}"
    fi
    say_timed pulls all "$(seconds_since "$started")"
}

tag_images() {
    local i
    for i in "${!images[@]}"; do
        # A digest-only reference has no name to start a container by; it stays untagged.
        [[ -n "${tags[$i]}" ]] || continue
        if [[ "$runtime" == containerd ]]; then
            # --force: a base may carry an older image under the tag.
            ctr --namespace "$namespace" images tag --force "$(pinned_name "$i")" \
                "${names[$i]}:${tags[$i]}" >/dev/null
        else
            docker tag "$(pinned_name "$i")" "${names[$i]}:${tags[$i]}"
        fi || fail "cannot tag ${images[$i]} as ${names[$i]}:${tags[$i]}"
        say "tagged ${names[$i]}:${tags[$i]}"
    done
}

run_provision() {
    local count=${#provision[@]} i
    ((count > 0)) || return 0
    say "running $count provision commands"
    for i in "${!provision[@]}"; do
        # By position only: a command may hold a secret, and this output reaches Run Command,
        # CloudWatch Logs and the client's failure report. The spec says what each one is.
        say "provision command $((i + 1)) of $count"
        local status=0
        # "--": a command that begins with "-" is a command, not options to bash.
        bash -euo pipefail -c -- "${provision[$i]}" || status=$?
        if ((status != 0)); then
            fail "provision command $((i + 1)) of $count failed (exit status $status)"
        fi
    done
}

# ---- Ansible ------------------------------------------------------------------------------

install_ansible() {
    if command -v ansible-playbook >/dev/null 2>&1; then
        say "Ansible is installed"
        return 0
    fi
    local id="" id_like=""
    if [[ -r "$root/etc/os-release" ]]; then
        id="$(os_release_field ID)"
        id_like="$(os_release_field ID_LIKE)"
    fi
    # A package manager that cannot install it leaves pip to try, so its failure is not fatal.
    case " $id $id_like " in
        *" debian "* | *" ubuntu "*)
            say "installing ansible-core with apt-get ($id)"
            (apt_install ansible-core) || say "apt-get could not install ansible-core"
            ;;
        *" amzn "*)
            say "installing ansible-core with dnf ($id)"
            dnf install -y -q ansible-core || say "dnf could not install ansible-core"
            ;;
    esac
    if ! command -v ansible-playbook >/dev/null 2>&1 &&
        command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then
        say "installing ansible-core with pip"
        python3 -m pip install --quiet ansible-core || say "pip could not install ansible-core"
        # pip puts its scripts here, which the agent's PATH may lack.
        export PATH="$PATH:/usr/local/bin"
    fi
    command -v ansible-playbook >/dev/null 2>&1 ||
        fail "ansible-playbook is missing and could not be installed (OS '$id');" \
            "use a base AMI with ansible-core, or one where dnf, apt-get or pip can install it"
}

run_ansible() {
    [[ -n "${SSM_AnsibleBundle:-}" ]] || return 0
    local playbook="$SSM_AnsiblePlaybook" extra_vars="${SSM_AnsibleExtraVars:-}"
    [[ -n "$extra_vars" ]] || extra_vars='{}'
    install_ansible
    mkdir -p "$root/tmp"
    ansible_dir="$(mktemp -d "$root/tmp/tfbake-ansible.XXXXXXXX")"
    # Private: the files may hold what only the image should know, and the directory is gone
    # before the image is taken (on_exit removes it when the bake fails).
    # Each step checked on its own: a failing one must stop the bake before any playbook runs.
    local unpack="cannot unpack the Ansible bundle"
    mkdir -m 700 "$ansible_dir/bundle" "$ansible_dir/tmp" || fail "$unpack (mkdir)"
    base64 -d <<<"$SSM_AnsibleBundle" >"$ansible_dir/bundle.tar.gz" ||
        fail "$unpack: SSM_AnsibleBundle is not base64"
    tar -xzf "$ansible_dir/bundle.tar.gz" -C "$ansible_dir/bundle" \
        --no-same-owner --no-same-permissions ||
        fail "$unpack: SSM_AnsibleBundle is not a gzip tar"
    (umask 077 && printf '%s\n' "$extra_vars" >"$ansible_dir/extra-vars.json") ||
        fail "$unpack: cannot write its extra variables"
    [[ -f "$ansible_dir/bundle/$playbook" ]] ||
        fail "the Ansible bundle holds no playbook '$playbook'"
    say "running Ansible playbook $playbook"
    local status=0 play_log="$ansible_dir/play.log"
    # Run from the bundle so its ansible.cfg, roles and group_vars are found; Ansible's own
    # temporary files stay in the private directory instead of root's home on the image.
    (
        cd "$ansible_dir/bundle" || exit 1
        ANSIBLE_LOCAL_TEMP="$ansible_dir/tmp" ANSIBLE_REMOTE_TEMP="$ansible_dir/tmp" \
            ANSIBLE_NOCOLOR=1 ansible-playbook -i localhost, -c local \
            --extra-vars "@$ansible_dir/extra-vars.json" "$playbook"
    ) 2>&1 | tee "$play_log" || status=$?
    if ((status != 0)); then
        # The failed task and its own message, in the line a failure report ends with.
        local task failure
        task="$(sed -n 's/^TASK \[\(.*\)\] \**$/\1/p' "$play_log" | tail -n 1 | cut -c 1-120)"
        failure="$(sed -n 's/^fatal: \[[^]]*\]: [A-Z]*! => //p' "$play_log" | tail -n 1 | cut -c 1-300)"
        fail "Ansible playbook $playbook failed (exit status $status)${task:+ at task [$task]}${failure:+: $failure}"
    fi
    rm -rf "$ansible_dir"
    ansible_dir=""
    say "Ansible playbook $playbook done"
}

# The digest containerd holds a name at (its manifest or index), with its content complete
# and unpacked; empty when it holds none of that.
containerd_digest() {
    ctr --namespace "$namespace" images check "name==$1" 2>/dev/null |
        awk -v ref="$1" '$1 == ref && $4 == "complete" && $NF == "true" { print $3 }'
}

verify_images() {
    local i digest
    for i in "${!images[@]}"; do
        if [[ "$runtime" == containerd ]]; then
            digest="$(containerd_digest "$(pinned_name "$i")")"
            [[ "$digest" == "${digests[$i]}" ]] ||
                fail "verify failed: ${images[$i]} is not complete and unpacked in containerd's namespace $namespace"
            if [[ -n "${tags[$i]}" ]]; then
                digest="$(containerd_digest "${names[$i]}:${tags[$i]}")"
                [[ "$digest" == "${digests[$i]}" ]] ||
                    fail "verify failed: tag ${names[$i]}:${tags[$i]} is at '${digest:-nothing}', not ${digests[$i]}"
            fi
        else
            docker image inspect "$(pinned_name "$i")" >/dev/null 2>&1 ||
                fail "verify failed: ${images[$i]} is not in Docker's image store"
            if [[ -n "${tags[$i]}" ]]; then
                docker image inspect "${names[$i]}:${tags[$i]}" >/dev/null 2>&1 ||
                    fail "verify failed: tag ${names[$i]}:${tags[$i]} is missing"
            fi
        fi
        say "verified ${images[$i]}"
    done
    say "verified ${#images[@]} images"
}

# ---- per-host identity --------------------------------------------------------------------

clean_docker_identity() {
    # With containerd as the runtime Docker may still be on the base, and may have run there.
    if [[ "$runtime" == containerd ]] && ! unit_exists docker.service; then return 0; fi
    # The socket too, where there is one, or the next docker call would start the daemon again;
    # both in one transaction, since a stop of one alone is cancelled by the other's job.
    local units=(docker.service)
    if unit_exists docker.socket; then units+=(docker.socket); fi
    systemctl stop "${units[@]}"
    # key.json is the engine identity of Docker before 23, engine-id of Docker 23 and later.
    rm -f "$root/etc/docker/key.json" "$root/var/lib/docker/engine-id" \
        "$root/var/run/docker.pid" "$root/run/docker.pid"
    say "Docker stopped; its engine identity and pid file removed"
}

clean_cloud_init() {
    # So that the new instance's user data runs on its first boot.
    if command -v cloud-init >/dev/null 2>&1; then
        cloud-init clean --logs || fail "cloud-init clean failed"
    else
        rm -rf "$root/var/lib/cloud/instances" "$root/var/lib/cloud/instance" \
            "$root/var/lib/cloud/data" "$root/var/lib/cloud/sem"
        rm -f "$root/var/log/cloud-init.log" "$root/var/log/cloud-init-output.log"
    fi
    say "cloud-init state cleared"
}

# An ECS container instance's identity: the agent keeps its registration in a cluster here, and
# an AMI that carries it makes every instance launched from it claim to be the builder. AWS says
# to remove it before creating an AMI, as Docker's key.json. The agent's configuration
# (/etc/ecs/ecs.config) stays: it is the base's, or the image set's own.
clean_ecs_agent_state() {
    local data="$root/var/lib/ecs/data"
    [[ -d "$data" ]] || return 0
    if unit_exists ecs.service; then systemctl stop ecs.service; fi
    find "$data" -mindepth 1 -maxdepth 1 -exec rm -rf -- {} +
    say "ECS agent state removed (/var/lib/ecs/data); its configuration kept"
}

# What containerd keeps of one host: containers and their tasks (a base that ran pods or
# ctr run), the CRI plugin's sandboxes, and scratch mounts. Images and their snapshots stay.
# Containers are removed through containerd, so its metadata forgets them; the directories
# after it stops.
clean_containerd_state() {
    [[ "$runtime" == containerd ]] || return 0
    local ns container
    while read -r ns; do
        while read -r container; do
            # </dev/null: nothing in the loop may read the list it walks.
            ctr --namespace "$ns" tasks kill --signal SIGKILL "$container" </dev/null >/dev/null 2>&1 || true
            ctr --namespace "$ns" tasks delete --force "$container" </dev/null >/dev/null 2>&1 || true
            ctr --namespace "$ns" containers delete "$container" </dev/null ||
                fail "cannot remove container $container of containerd's namespace $ns"
        done < <(ctr --namespace "$ns" containers list --quiet)
    done < <(ctr namespaces list --quiet)
    systemctl stop containerd.service
    local state="$root/var/lib/containerd"
    rm -rf -- "$state"/io.containerd.grpc.v1.cri/sandboxes/* \
        "$state"/io.containerd.grpc.v1.cri/containers/* "$state"/tmpmounts/* \
        "$state"/io.containerd.runtime.v2.task/*/*
    say "containerd stopped; its containers, tasks and sandboxes removed, its images kept"
}

clean_host_files() {
    # Emptied, not deleted: systemd writes a fresh ID into an empty file on first boot
    # (machine-id(5)), while some tools fail when the file is absent. D-Bus keeps a copy that
    # systemd would copy back at boot when it is a file (Debian's is one); as a link, it
    # follows the new ID.
    : >"$root/etc/machine-id"
    if [[ -e "$root/var/lib/dbus/machine-id" && ! -L "$root/var/lib/dbus/machine-id" ]]; then
        rm -f "$root/var/lib/dbus/machine-id"
    fi
    # Unmatched patterns stay literal, and rm -f ignores them.
    rm -f -- "$root"/etc/ssh/ssh_host_* "$root"/root/.*_history "$root"/home/*/.*_history
    rm -rf -- "$root/root/.ssh" "$root"/home/*/.ssh
    # The secret systemd encrypts credentials with, DHCP leases, and the builder's tmp files.
    rm -f -- "$root/var/lib/systemd/credential.secret" "$root"/var/lib/dhcp/*.lease* \
        "$root"/var/lib/dhclient/* "$root"/var/lib/NetworkManager/*.lease
    # Private tmp directories of running services go with their services at shutdown.
    local tmp
    for tmp in "$root/tmp" "$root/var/tmp"; do
        if [[ -d "$tmp" ]]; then
            find "$tmp" -mindepth 1 -maxdepth 1 ! -name 'systemd-private-*' -exec rm -rf -- {} +
        fi
    done
    say "machine-id emptied; SSH host keys and keys of users, shell histories, leases, tmp removed"
    regenerate_ssh_host_keys_at_boot
}

clean_logs() {
    # The journal (with this recipe's output in it) goes to memory from here on, and what it
    # wrote to disk is removed; the directory stays, so instances keep a persistent journal.
    if command -v journalctl >/dev/null 2>&1; then
        journalctl --relinquish-var >/dev/null 2>&1 || true
    fi
    rm -rf -- "$root"/var/log/journal/*
    # Rotated logs go; the others are emptied, keeping owners and modes for their writers.
    if [[ -d "$root/var/log" ]]; then
        find "$root/var/log" -type f \( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \) -delete
        find "$root/var/log" -type f ! -name README -exec truncate -s 0 {} +
    fi
    say "logs and the journal removed"
}

regenerate_ssh_host_keys_at_boot() {
    # cloud-init makes new host keys on an instance's first boot. Without it nothing does, and
    # sshd would not start: a unit makes them before sshd, only while none exist.
    if command -v cloud-init >/dev/null 2>&1 || [[ ! -d "$root/etc/ssh" ]]; then
        return
    fi
    local unit_file="$root/etc/systemd/system/$ssh_host_keys_unit"
    mkdir -p "$(dirname "$unit_file")"
    cat >"$unit_file" <<'UNIT'
[Unit]
Description=Create SSH host keys on the first boot of an instance of this image
Before=ssh.service sshd.service
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
UNIT
    systemctl enable "$ssh_host_keys_unit"
    say "SSH host keys will be created on first boot ($ssh_host_keys_unit)"
}

schedule_shutdown_cleanup() {
    # Some per-host state cannot go now, because it is still in use or is written at shutdown:
    # the SSM agent is running this very command and keeps its script, output and state under
    # /var/lib/amazon/ssm/<instance-id>, systemd saves a new random seed when it stops, and
    # logs the shutdown in wtmp. A unit started now is stopped after all three when the runbook
    # stops the builder, removes them then, and removes itself. The agent stays installed and
    # enabled.
    local data="$root/var/lib/amazon/ssm"
    local seed="$root/var/lib/systemd/random-seed"
    local wtmp="$root/var/log/wtmp"
    local unit_file="$root/etc/systemd/system/$shutdown_cleanup_unit"
    mkdir -p "$(dirname "$unit_file")"
    cat >"$unit_file" <<EOF
[Unit]
Description=Remove per-host state written until shutdown, before tfbake's image is taken
# Ordered before units that run early at boot, so without the default dependencies (they
# would make an ordering cycle, which systemd breaks by dropping this unit's stop job).
DefaultDependencies=no
Conflicts=shutdown.target
Before=shutdown.target ${ssm_unit_candidates[*]} systemd-random-seed.service systemd-update-utmp.service
RequiresMountsFor=/var/lib/amazon/ssm /var/lib/systemd /var/log

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
ExecStop=/bin/sh -c 'rm -rf $data/i-* $data/mi-* $data/registration $data/Vault $data/runtimeconfig $data/credentials $seed $unit_file; if [ -f $wtmp ]; then : >$wtmp; fi'
EOF
    systemctl daemon-reload
    # The first call after a reload can meet systemd's manager connection still closing.
    local attempt
    for attempt in 1 2 3 4 5; do
        systemctl start "$shutdown_cleanup_unit" && break
        ((attempt < 5)) || fail "cannot start $shutdown_cleanup_unit"
        sleep 1
    done
    say "SSM agent state and random seed removal scheduled for shutdown"
}

main() {
    if [[ "${SSM_FullOutput:-false}" != true ]]; then start_bounded_output; fi
    workdir="$(mktemp -d)"
    read_inputs
    say "baking ${#images[@]} images, ${#provision[@]} provision commands"
    # Whatever cloud-init does at the builder's first boot must be over before the bake
    # changes the system, and before its state is cleared.
    wait_for_first_boot
    install_image_store
    enable_services
    log_in_to_registries
    pull_images
    tag_images
    # Before any provision command or playbook runs: neither ever sees the credentials.
    remove_credentials
    say "registry credentials removed"
    run_provision
    run_ansible
    verify_images
    # Before Docker stops: on ECS-optimized AMIs the agent runs as a container.
    clean_ecs_agent_state
    clean_docker_identity
    clean_containerd_state
    clean_cloud_init
    clean_host_files
    clean_package_caches
    clean_logs
    schedule_shutdown_cleanup
    sync
    say "done"
}

main "$@"
