# Golden error tests: each tests/errors/*.net holds a network with mistakes
# and, in comments, the errors netc must report:
#   # expect-error: 4:9: unknown layer 'conv2d'
#   # expect-hint: did you mean 'conv'?
# error_runner checks them (see tests/error_runner.c); adding a case is
# adding a file.
add_executable(error_runner ${CMAKE_CURRENT_SOURCE_DIR}/error_runner.c)
target_compile_options(error_runner PRIVATE ${NETC_WARN})
target_link_libraries(error_runner PRIVATE netc_compiler)

file(GLOB NETC_ERROR_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/errors/*.net)
foreach(f ${NETC_ERROR_TESTS})
  get_filename_component(name ${f} NAME_WE)
  file(RELATIVE_PATH rel ${CMAKE_SOURCE_DIR} ${f})
  add_test(NAME error.${name} COMMAND error_runner ${rel} WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
endforeach()
