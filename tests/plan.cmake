# Autotuning and plan files (compiler/backend/autotune.c, compiler/graph/plan.c)
# from the command line: tests/plan.sh, through each backend there is.
if(NETC_LLVM)
  set(plan_backends c llvm)
else()
  set(plan_backends c)
endif()
add_test(NAME plan.cli
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/plan.sh $<TARGET_FILE:netc> ${plan_backends}
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
