# The benchmark suite's own parts, without measuring anything: every row
# of bench/rows.py is a network netc accepts with the MACs the suite
# counts, bench/layer_main.c builds and runs against a generated header,
# bench/peak.c's loop is FMA, and the report renders raw lines.  Not in
# the sanitizer build: the drivers link the runtime library as benchmarks
# do, without the sanitizer runtimes an instrumented library needs.
if(NETC_SANITIZE)
  return()
endif()
add_test(NAME bench.smoke
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/bench_smoke.sh $<TARGET_FILE:netc> $<TARGET_FILE:netcrt>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(bench.smoke PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
