# examples/zoo's torchvision networks: each checks and has torchvision's
# parameter count (tests/zoo_tv.sh; bench/zoo_check.py compares outputs).
add_test(NAME zoo.torchvision COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/zoo_tv.sh $<TARGET_FILE:netc>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(zoo.torchvision PROPERTIES TIMEOUT 60 LABELS zoo)
