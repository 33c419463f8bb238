#!/bin/sh
# Test command that fails: some stderr, the last line says why, exit 3.
cat >/dev/null
echo "starting up" >&2
echo "partial output"
echo "error: model overloaded, try later" >&2
exit 3
