#!/bin/bash
# Mutation check: applies each breakage below to the source, one at a time,
# rebuilds a CPU build in build/mutate and runs the tests meant to catch it
# there (their plain binaries, not the sanitizer reruns); prints a
# table of which breakages the tests caught. Every row must say "caught".
# The source is restored after each breakage (and on interrupt).
#
#   tests/mutate.sh [--all]   --all runs every plain test binary for each
#                             breakage instead of the ones listed with it
cd "$(dirname "$0")/.." || exit 1
all=0
[ "${1:-}" = "--all" ] && all=1

# name ^ file ^ text ^ replacement ^ tests meant to catch it
mutations=(
"hyper_norm squared^daemon/meta/evograd.c^m->hyper_norm = sqrt(sq);^m->hyper_norm = sq;^test_train_replay"
"t1t2 hyper_norm squared^daemon/meta/t1t2.c^m->hyper_norm = sqrt(sq);^m->hyper_norm = sq;^test_train_replay"
"t1t2 epsilon 300x^daemon/meta/t1t2.c^float eps = (float)(0.01 / sqrt(vv));^float eps = (float)(3.0 / sqrt(vv));^test_evograd test_train_replay"
"evograd sign flipped^daemon/meta/evograd.c^double seed = -(double)sigma^double seed = (double)sigma^test_evograd test_train_replay test_train_meta"
"copy weights inverted^daemon/meta/evograd.c^sum += w[i] = exp(-(losses[i] - lo) / tau);^sum += w[i] = exp((losses[i] - lo) / tau);^test_evograd test_train_replay"
"checkpoint: no bound on payloads^daemon/meta/ckpt_file.c^if (pos > end || bytes > end - pos)^if (0)^test_train_checkpoint"
"checkpoint: checksum ignored^daemon/meta/ckpt_file.c^if (stored != (uint32_t)crc)^if (0)^test_train_checkpoint"
"rotation: angle gradient sign^daemon/nn/cpu/cpu_rotate.c^dangle[0] = (float)(dangle[0] + total);^dangle[0] = (float)(dangle[0] - total);^test_rotate test_train_replay"
"adam: no bias correction^daemon/nn/backend.c^const double bc1 = 1.0 - pow((double)beta1, (double)t);^const double bc1 = 1.0;^test_optim"
)

backup=$(mktemp -d)
restore() { # puts back every file saved in $backup (NAME with NAME.path)
    for p in "$backup"/*.path; do
        [ -e "$p" ] || continue
        cp "${p%.path}" "$(cat "$p")"
        rm -f "$p"
    done
}
trap 'restore; exit 130' INT TERM

# apply FILE TEXT REPLACEMENT: the text must occur exactly once.
apply() {
    /usr/bin/python3 - "$1" "$2" "$3" <<'EOF'
import sys
path, text, repl = sys.argv[1], sys.argv[2], sys.argv[3].replace("\\&", "&")
src = open(path).read()
n = src.count(text)
if n != 1:
    sys.exit("mutate: %r occurs %d times in %s" % (text, n, path))
open(path, "w").write(src.replace(text, repl))
EOF
}

printf '%-34s %-10s %s\n' "breakage" "result" "failing tests"
missed=0
for row in "${mutations[@]}"; do
    IFS='^' read -r name file text repl tests <<<"$row"
    key=$(echo "$file" | tr '/' '_')
    cp "$file" "$backup/$key"
    echo "$file" >"$backup/$key.path"
    if ! apply "$file" "$text" "$repl"; then
        printf '%-34s %-10s %s\n' "$name" "stale" "(the text to break is gone: fix the table)"
        missed=$((missed + 1))
        restore
        continue
    fi
    if ! make -s CUDA=0 BUILD=build/mutate all >/dev/null 2>"$backup/build.log"; then
        printf '%-34s %-10s %s\n' "$name" "broken" "(does not build: fix the table)"
        missed=$((missed + 1))
        restore
        continue
    fi
    [ "$all" -eq 1 ] && tests=$(cd build/mutate/tests && ls test_*)
    failing=""
    for t in $tests; do
        CMOCKA_MESSAGE_OUTPUT=TAP timeout 1200 "build/mutate/tests/$t" >"$backup/out" 2>&1 ||
            failing="$failing $t"
    done
    if [ -n "$failing" ]; then
        printf '%-34s %-10s %s\n' "$name" "caught" "$failing"
    else
        printf '%-34s %-10s %s\n' "$name" "MISSED" "(passed: $tests)"
        missed=$((missed + 1))
    fi
    restore
done
rm -rf "$backup"
echo "$missed of ${#mutations[@]} breakages missed"
[ "$missed" -eq 0 ]
