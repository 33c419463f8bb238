#!/bin/sh
# Test command (prompt-mode argument): prints its arguments, and whether
# stdin was closed without data.
input=$(cat)
printf 'args:'
for a in "$@"; do printf ' [%s]' "$a"; done
printf ' stdin=[%s]\n' "$input"
