# A short libFuzzer run of every target in fuzz/ (scripts/fuzz.sh: a clang
# build with ASan + UBSan of its own in <build>/fuzz-build, 5 s a target
# from the committed seeds, which include every crash found so far).
# Skipped (status 77) when clang cannot link libFuzzer; the sanitizer build
# leaves it out, since the targets are sanitized already.
if(NOT NETC_SANITIZE)
  add_test(NAME fuzz.smoke
           COMMAND env NETC_FUZZ_BUILD=${CMAKE_BINARY_DIR}/fuzz-build NETC_FUZZ_JOBS=1
                   bash ${CMAKE_SOURCE_DIR}/scripts/fuzz.sh 5
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  # The build (about a minute) and six 5 s runs; longer campaigns: scripts/fuzz.sh SECONDS.
  set_tests_properties(fuzz.smoke PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600 LABELS fuzz)
endif()
