#!/bin/sh
# Test command (text output): reads the prompt on stdin, then prints words
# slowly so the provider's streaming can be observed, then the prompt back.
prompt=$(cat)
for w in alpha beta gamma delta epsilon; do
  printf '%s ' "$w"
  sleep 0.05
done
printf 'model=%s prompt=%s\n' "$1" "$prompt"
