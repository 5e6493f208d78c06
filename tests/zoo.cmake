# The network zoo (examples/zoo, docs/zoo.md) through tests/zoo_run.sh:
# every file checks (and matches the size its header states) and compiles
# through both backends; each small variant trains two short epochs on
# Fashion-MNIST with its loss falling; the other networks below 1e8 MACs
# take three steps on a generated batch with their loss falling
# (tests/zoo_steps.c).  The scripts list the files when they run, so a
# network added to examples/zoo is covered.  Full C builds and training
# steps of the large networks are in bench/zoo_steps.sh.
set(zoo_run ${CMAKE_CURRENT_SOURCE_DIR}/zoo_run.sh)
if(NETC_LLVM)
  set(zoo_backends "c llvm")
  set(zoo_train_backend llvm)
else()
  set(zoo_backends "c")
  set(zoo_train_backend c)
endif()
add_test(NAME zoo.check
         COMMAND bash ${zoo_run} $<TARGET_FILE:netc> $<TARGET_FILE:netcrt> check
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
add_test(NAME zoo.compile
         COMMAND bash ${zoo_run} $<TARGET_FILE:netc> $<TARGET_FILE:netcrt> compile ${zoo_backends}
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(zoo.compile PROPERTIES TIMEOUT 300)
file(GLOB zoo_small CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/examples/zoo/small/*.net)
foreach(f ${zoo_small})
  get_filename_component(n ${f} NAME_WE)
  add_test(NAME zoo.small.${n}
           COMMAND bash ${zoo_run} $<TARGET_FILE:netc> $<TARGET_FILE:netcrt> small ${f} ${zoo_train_backend}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(zoo.small.${n} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
endforeach()
# The C backend here, so that both backends' code trains.
add_test(NAME zoo.steps
         COMMAND bash ${zoo_run} $<TARGET_FILE:netc> $<TARGET_FILE:netcrt> steps-all c
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(zoo.steps PROPERTIES TIMEOUT 300)
if(NETC_SANITIZE)
  # tests/zoo_steps.c links the instrumented runtime library.
  set_tests_properties(zoo.compile zoo.steps PROPERTIES
                       ENVIRONMENT "ZOO_LDFLAGS=-fsanitize=address,undefined")
endif()
