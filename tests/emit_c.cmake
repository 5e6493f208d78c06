# test_emit_c dlopen()s the libraries it compiles from generated C.
if(TARGET test_emit_c)
  target_link_libraries(test_emit_c PRIVATE ${CMAKE_DL_LIBS})
endif()
