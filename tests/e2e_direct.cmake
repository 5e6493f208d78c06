# direct: resnet_mini with --algo=direct (lower_direct.c's micro-kernel for
# conv and stride-1 conv_dx), the same bits on 1 and 3 threads
# (tests/e2e_direct.sh); through LLVM when it is built.
if(NETC_LLVM)
  set(direct_backend llvm)
else()
  set(direct_backend c)
endif()
add_test(NAME e2e.direct COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e_direct.sh
         $<TARGET_FILE:netc> ${direct_backend} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(e2e.direct PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
