# runtime.rt_alloc_walk: the runtime under allocation failure.  LeNet's
# generated C (netc emit-c, at build time) is linked with the runtime into
# one test, which fails each allocation of a short training run in turn
# (tests/runtime/alloc_walk.c).  Its name has no test_ prefix so the
# runtime/test_*.c glob does not build it a second time without the model.
set(NETC_LENET_GEN ${CMAKE_CURRENT_BINARY_DIR}/lenet-gen)
add_custom_command(OUTPUT ${NETC_LENET_GEN}/lenet.c ${NETC_LENET_GEN}/lenet.h
                   COMMAND netc emit-c ${CMAKE_SOURCE_DIR}/examples/lenet.net -o ${NETC_LENET_GEN}
                   DEPENDS netc ${CMAKE_SOURCE_DIR}/examples/lenet.net
                   COMMENT "netc emit-c examples/lenet.net for rt_alloc_walk")
add_executable(rt_alloc_walk ${CMAKE_CURRENT_SOURCE_DIR}/runtime/alloc_walk.c
               ${NETC_LENET_GEN}/lenet.c)
target_include_directories(rt_alloc_walk PRIVATE ${CMOCKA_INCLUDE} ${CMAKE_SOURCE_DIR}/runtime
                           ${NETC_LENET_GEN})
target_link_libraries(rt_alloc_walk PRIVATE netcrt ${CMOCKA_LIB})
add_test(NAME runtime.rt_alloc_walk COMMAND rt_alloc_walk WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(runtime.rt_alloc_walk PROPERTIES TIMEOUT 300)
