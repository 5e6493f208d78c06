# Graph folds (compiler/graph/fold_shuffle.c): no shuffle kernels left, and
# the same training steps with and without them (tests/fold_shuffle.sh).
if(NETC_LLVM)
  set(fold_backends "c llvm")
else()
  set(fold_backends "c")
endif()
add_test(NAME fold.shuffle
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/fold_shuffle.sh $<TARGET_FILE:netc>
                 $<TARGET_FILE:netcrt> ${fold_backends}
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(fold.shuffle PROPERTIES TIMEOUT 600)
if(NETC_SANITIZE)
  # tests/zoo_steps.c links the instrumented runtime library.
  set_tests_properties(fold.shuffle PROPERTIES ENVIRONMENT "ZOO_LDFLAGS=-fsanitize=address,undefined")
endif()
