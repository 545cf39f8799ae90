#!/bin/sh
# tfbake builder user data: make sure the SSM agent runs, for base AMIs that ship none (Debian's
# official AMIs do not). The bake reaches the builder only through the agent; without it the
# runbook would wait at WaitForBuilderOnline for nothing.
#
# Installs AWS's regional package, as AWS documents it for Debian and Ubuntu (.deb) and the
# RHEL family (.rpm). Every outcome is written to the console as a line starting
# "tfbake-agent:", which tfbake reads with GetConsoleOutput to name why a builder never came
# online.

say() {
    echo "tfbake-agent: $*"
    # The console is what GetConsoleOutput returns; cloud-init's own log may not reach it.
    if [ -w /dev/console ]; then echo "tfbake-agent: $*" >/dev/console 2>/dev/null || true; fi
}

agent_unit() {
    for unit in amazon-ssm-agent.service snap.amazon-ssm-agent.amazon-ssm-agent.service; do
        if systemctl cat "$unit" >/dev/null 2>&1; then echo "$unit"; return 0; fi
    done
    return 1
}

fetch() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsS --retry 3 --connect-timeout 10 -o "$2" "$1"
    elif command -v wget >/dev/null 2>&1; then
        wget -q -T 10 -t 3 -O "$2" "$1"
    fi
}

region() {
    token="$(fetch_imds_token)" || return 1
    imds "$token" latest/meta-data/placement/region
}

fetch_imds_token() {
    # IMDSv2 is required on builders (HttpTokens=required).
    if command -v curl >/dev/null 2>&1; then
        curl -fsS -X PUT -H "X-aws-ec2-metadata-token-ttl-seconds: 300" \
            http://169.254.169.254/latest/api/token
    else
        wget -q -O - --method=PUT --header="X-aws-ec2-metadata-token-ttl-seconds: 300" \
            http://169.254.169.254/latest/api/token
    fi
}

imds() {
    if command -v curl >/dev/null 2>&1; then
        curl -fsS -H "X-aws-ec2-metadata-token: $1" "http://169.254.169.254/$2"
    else
        wget -q -O - --header="X-aws-ec2-metadata-token: $1" "http://169.254.169.254/$2"
    fi
}

install_agent() {
    if ! command -v curl >/dev/null 2>&1 && ! command -v wget >/dev/null 2>&1; then
        say "install failed: neither curl nor wget to fetch the agent"
        return 1
    fi
    case "$(uname -m)" in
        x86_64) arch=amd64 ;;
        aarch64) arch=arm64 ;;
        *) say "install failed: no SSM agent package for $(uname -m)"; return 1 ;;
    esac
    if ! reg="$(region)" || [ -z "$reg" ]; then
        say "install failed: the instance metadata service did not tell the region"
        return 1
    fi
    base="https://s3.$reg.amazonaws.com/amazon-ssm-$reg/latest"
    package="$(mktemp -d)" || return 1
    if command -v dpkg >/dev/null 2>&1; then
        fetch "$base/debian_$arch/amazon-ssm-agent.deb" "$package/agent.deb" &&
            dpkg -i "$package/agent.deb"
    elif command -v dnf >/dev/null 2>&1 || command -v yum >/dev/null 2>&1; then
        manager="$(command -v dnf || command -v yum)"
        fetch "$base/linux_$arch/amazon-ssm-agent.rpm" "$package/agent.rpm" &&
            "$manager" install -y "$package/agent.rpm"
    else
        say "install failed: neither dpkg nor dnf/yum to install the agent"
        return 1
    fi
    status=$?
    rm -rf "$package"
    if [ "$status" -ne 0 ]; then
        say "install failed: could not fetch or install $base (no route to S3 in $reg?)"
        return 1
    fi
}

if unit="$(agent_unit)"; then
    say "agent present ($unit)"
else
    say "no SSM agent on this image: installing it"
    install_agent || exit 0
    unit="$(agent_unit)" || { say "install failed: no agent unit after installing"; exit 0; }
fi
systemctl enable "$unit" >/dev/null 2>&1 || true
if systemctl start "$unit"; then
    say "agent running ($unit)"
else
    say "agent failed to start ($unit)"
fi
