# The train section's data sources end to end through `netc build`: CIFAR
# batches with augmentation, converted IDX, .npy with a split, bad files
# (tests/e2e_data.sh).
add_test(NAME e2e.data COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e_data.sh $<TARGET_FILE:netc>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(e2e.data PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
# Targets other than one class label per image: masks, tensors, target=self,
# volumes (tests/e2e_targets.sh).
add_test(NAME e2e.targets COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/e2e_targets.sh $<TARGET_FILE:netc>)
set_tests_properties(e2e.targets PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600)
