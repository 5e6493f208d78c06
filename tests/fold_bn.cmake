# Batch-norm folding (compiler/graph/fold_bn.c): no batchnorm kernel left in
# the inference entries of conv -> batchnorm nets, the same forward outputs
# within 1e-5 and the same training step to every bit with and without it
# (tests/fold_bn.sh).
if(NETC_LLVM)
  set(fold_bn_backends "c llvm")
else()
  set(fold_bn_backends "c")
endif()
add_test(NAME fold.bn
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/fold_bn.sh $<TARGET_FILE:netc>
                 $<TARGET_FILE:netcrt> ${fold_bn_backends}
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(fold.bn PROPERTIES TIMEOUT 600)
if(NETC_SANITIZE)
  # tests/fold_bn_forward.c links the instrumented runtime library.
  set_tests_properties(fold.bn PROPERTIES ENVIRONMENT "ZOO_LDFLAGS=-fsanitize=address,undefined")
endif()
