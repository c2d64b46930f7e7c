#!/bin/sh
# mkkeys.sh DIR: an NKey for each user of push.conf. Each role's seed goes to
# DIR/<role>.nk (readable by its owner only; a seed already there is kept),
# and its public key into keys.conf beside this script, which push.conf
# includes. Give each seed only to the processes of its role (the edge:
# --nats-nkey DIR/edge.nk). Needs nk (github.com/nats-io/nkeys/nk), at the
# version go.mod pins: `make nats-keys` builds it into ./bin and runs this.
set -eu
dir=${1:?usage: mkkeys.sh DIR}
nk=${NK:-nk}
here=$(cd "$(dirname "$0")" && pwd)
umask 077
mkdir -p "$dir"
out="$here/keys.conf.new"
{
	echo "# The public NKeys of push.conf's users, made by mkkeys.sh from the"
	echo "# seeds in $dir (secret; never here). A public key is no secret."
	for role in edge producer broadcast backend operator membership presence kick events; do
		seed="$dir/$role.nk"
		if [ ! -s "$seed" ]; then
			"$nk" -gen user >"$seed"
		fi
		pub=$("$nk" -inkey "$seed" -pubout)
		echo "$(echo "$role" | tr a-z A-Z)_NKEY: \"$pub\""
	done
} >"$out"
chmod 644 "$out"
mv "$out" "$here/keys.conf"
echo "seeds in $dir; public keys in $here/keys.conf"
