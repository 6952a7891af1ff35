#!/bin/sh
# Test hosts that are network namespaces: each "host" is a namespace with its own address on a
# bridge, so mpirun --hostfile (with scripts/netns-rsh as its rsh agent) and our TCP transport
# talk across real interfaces on one machine. Root only (ip netns).
#
#   scripts/netns-hosts.sh up PREFIX N [S]    creates PREFIX-1 … PREFIX-N at 10.77.S.2 … and bridge PREFIX-br at 10.77.S.1
#   scripts/netns-hosts.sh down PREFIX N      removes them
set -eu
action=$1 prefix=$2 count=$3 subnet=${4:-0}
bridge="${prefix}-br"
case "$action" in
up)
    ip link add "$bridge" type bridge
    ip addr add "10.77.$subnet.1/24" dev "$bridge"
    ip link set "$bridge" up
    i=1
    while [ "$i" -le "$count" ]; do
        ns="${prefix}-$i"
        ip netns add "$ns"
        ip netns exec "$ns" ip link set lo up
        ip link add "${prefix}v$i" type veth peer name "${prefix}p$i"
        ip link set "${prefix}v$i" master "$bridge" up
        ip link set "${prefix}p$i" netns "$ns"
        ip netns exec "$ns" ip addr add "10.77.$subnet.$((i + 1))/24" dev "${prefix}p$i"
        ip netns exec "$ns" ip link set "${prefix}p$i" up
        ip netns exec "$ns" ip route add default via "10.77.$subnet.1"
        i=$((i + 1))
    done
    # Wait (up to 5 s) until every bridge port forwards, so the first packets are not lost.
    tries=0
    while [ "$tries" -lt 100 ]; do
        ready=1
        for state in /sys/class/net/"$bridge"/brif/*/state; do
            [ "$(cat "$state")" = 3 ] || ready=0
        done
        [ "$ready" = 1 ] && break
        sleep 0.05
        tries=$((tries + 1))
    done
    ;;
down)
    i=1
    while [ "$i" -le "$count" ]; do
        # Whatever still runs in the namespace (an orphaned MPI daemon) goes first.
        for pid in $(ip netns pids "${prefix}-$i" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns del "${prefix}-$i" 2>/dev/null || true
        ip link del "${prefix}v$i" 2>/dev/null || true
        i=$((i + 1))
    done
    ip link del "$bridge" 2>/dev/null || true
    ;;
esac
