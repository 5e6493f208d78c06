# Golden IR tests: tests/golden/NAME.net with NAME.<phase>.expected dumps.
file(GLOB NETC_GOLDEN CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/golden/*.net)
foreach(net ${NETC_GOLDEN})
  get_filename_component(name ${net} NAME_WE)
  add_test(NAME golden.${name}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/golden_run.sh $<TARGET_FILE:netc> ${net}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
endforeach()
add_test(NAME docs.ir_dumps COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/docs_check.sh
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
