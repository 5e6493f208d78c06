# The Fashion-MNIST examples (examples/fmnist_cnn*.net): each builds, gives
# the same bits on 1 and 2 threads, and trained on 2000 images scores above a
# sanity bar (tests/fmnist.sh). bench/fmnist.sh trains them to their targets.
if(NETC_LLVM)
  set(fmnist_backend llvm)
else()
  set(fmnist_backend c)
endif()
foreach(name fmnist_cnn fmnist_cnn_bn)
  add_test(NAME e2e.${name}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/fmnist.sh $<TARGET_FILE:netc>
                   ${fmnist_backend} ${name} 0.6
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(e2e.${name} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)
endforeach()
