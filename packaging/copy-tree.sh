#!/bin/sh
# packaging/copy-tree.sh TOP DEST — copy the source tree TOP as it is (its
# tracked and new files, not the ignored ones such as build/) into DEST, for
# make deb and make rpm.  Outside a git checkout: everything but build*/.
set -eu
top=$1 dest=$2
mkdir -p "$dest"
if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	(cd "$top" && git ls-files -z --cached --others --exclude-standard |
		xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
		tar --null -T - -cf -) | tar -C "$dest" -xf -
else
	tar -C "$top" --exclude=./build --exclude='./build-*' -cf - . | tar -C "$dest" -xf -
fi
