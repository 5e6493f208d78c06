# End to end: `netc build` LeNet, train briefly on a subset of Fashion-MNIST,
# check that the loss falls and the program's commands work.
add_test(NAME e2e.lenet.c
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e_lenet.sh $<TARGET_FILE:netc> c
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(e2e.lenet.c PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
if(NETC_LLVM)
  add_test(NAME e2e.lenet.llvm
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e_lenet.sh $<TARGET_FILE:netc> llvm
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(e2e.lenet.llvm PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
endif()
# LeNet as a user can break it: bad checkpoints, full disks, links and
# devices at the target, NaN, truncated gzip (tests/e2e_hardening.sh).
add_test(NAME e2e.hardening COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e_hardening.sh
         $<TARGET_FILE:netc> WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(e2e.hardening PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
# losses (issue 8): training with other losses through the runtime
add_test(NAME e2e.losses COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e_losses.sh
         $<TARGET_FILE:netc> WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(e2e.losses PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
# Every optimiser built from a .net file, trained, resumed exactly
# (tests/e2e_optim.sh).
add_test(NAME e2e.optim COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e_optim.sh
         $<TARGET_FILE:netc> WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(e2e.optim PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
# Batch norm and dropout in a program: state tensors per step, in
# checkpoints, on any thread count and across a resume (tests/e2e_norm.sh).
foreach(backend c llvm)
  if(backend STREQUAL "c" OR NETC_LLVM)
    add_test(NAME e2e.norm.${backend}
             COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e_norm.sh $<TARGET_FILE:netc> ${backend}
             WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(e2e.norm.${backend} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
  endif()
endforeach()
# winograd: resnet_mini with --algo=winograd, the same bits on 1 and 3 threads
# (tests/e2e_winograd.sh); through LLVM when it is built (faster to compile).
if(NETC_LLVM)
  set(wino_backend llvm)
else()
  set(wino_backend c)
endif()
add_test(NAME e2e.winograd COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e_winograd.sh
         $<TARGET_FILE:netc> ${wino_backend} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(e2e.winograd PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
# the algorithm by batch: guarded calls of two Winograd tiles, each batch
# size the bits of one of them (tests/e2e_batch_algo.sh), through both backends
foreach(backend c llvm)
  if(backend STREQUAL "c" OR NETC_LLVM)
    add_test(NAME e2e.batch_algo.${backend}
             COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e_batch_algo.sh $<TARGET_FILE:netc> ${backend}
             WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(e2e.batch_algo.${backend} PROPERTIES TIMEOUT 300)
  endif()
endforeach()
