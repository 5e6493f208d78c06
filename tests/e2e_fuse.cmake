# Epilogue fusion (compiler/graph/fuse.c): fused and --no-fuse programs
# train and predict to the same bits, on 1 and 3 threads (tests/e2e_fuse.sh).
# LLVM (quick to build) runs every convolution algorithm; the C backend
# the schedule's own choice, compared with LLVM's when it is built.
if(NETC_LLVM)
  add_test(NAME e2e.fuse.llvm
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e_fuse.sh $<TARGET_FILE:netc> llvm
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(e2e.fuse.llvm PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 1200)
endif()
add_test(NAME e2e.fuse.c
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e_fuse.sh $<TARGET_FILE:netc> c auto
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(e2e.fuse.c PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 1800)
if(NETC_LLVM)
  set_tests_properties(e2e.fuse.c PROPERTIES ENVIRONMENT "NETC_FUSE_CROSS=llvm")
endif()
