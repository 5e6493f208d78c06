# LLVM backend tests (compiler/backend/emit_llvm.c).
#
# unit.test_emit_llvm compares the LLVM backend with the C backend on a
# hand-built program, and checks .ll output, determinism, cross-target
# objects and error reporting.  It compiles and links with the build's C
# compiler, and exits 77 (CTest: skipped) when netc is built without LLVM.
if(TARGET test_emit_llvm)
  target_compile_definitions(test_emit_llvm PRIVATE NETC_TEST_CC="${CMAKE_C_COMPILER}")
  if(NETC_SANITIZE)
    # libnetcrt.a is instrumented: a program linked against it needs the
    # sanitizer runtimes too.
    target_compile_definitions(test_emit_llvm PRIVATE
                               NETC_TEST_LINK_FLAGS="-fsanitize=address,undefined")
  endif()
  target_include_directories(test_emit_llvm PRIVATE ${CMAKE_SOURCE_DIR}/runtime)
  target_link_libraries(test_emit_llvm PRIVATE ${CMAKE_DL_LIBS})
  add_dependencies(test_emit_llvm netcrt)
  set_tests_properties(unit.test_emit_llvm PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
endif()
if(NOT NETC_LLVM)
  message(STATUS "netc: LLVM backend off: unit.test_emit_llvm will report SKIP, "
                 "op.llvm.* and e2e.*.llvm tests are not registered")
endif()

# End to end: LeNet through both backends, the same short training run,
# the same losses (tests/e2e_backends.sh states the tolerance).
if(NETC_LLVM)
  add_test(NAME e2e.lenet.backends
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e_backends.sh $<TARGET_FILE:netc>
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(e2e.lenet.backends PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
  # The activations and broadcasting arithmetic, their threads included.
  add_test(NAME e2e.gated.backends
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e_backends.sh $<TARGET_FILE:netc>
                   examples/gated.net
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(e2e.gated.backends PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
endif()
