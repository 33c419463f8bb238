#!/bin/sh
# Test command mimicking `claude -p --output-format json`: one JSON object
# with the answer in "result" and token usage.
prompt=$(cat)
echo "a log line on stderr" >&2
printf '{"type":"result","subtype":"success","is_error":false,"duration_ms":12,"num_turns":1,'
printf '"result":"Paris is the capital of France (%s chars asked)","session_id":"abc",' "${#prompt}"
printf '"total_cost_usd":0.0042,"usage":{"input_tokens":21,"cache_creation_input_tokens":100,'
printf '"cache_read_input_tokens":0,"output_tokens":9}}\n'
