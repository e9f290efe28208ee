# `cmake --install build --prefix P` installs:
#   bin/resnet                              the command line
#   include/resnet/...                      the public headers (not the test oracle's)
#   LIBDIR/libresnet.a, libresnet.so*       the library, static and shared
#   LIBDIR/cmake/resnet/                    find_package(resnet): resnet::resnet and friends
#   LIBDIR/pkgconfig/resnet.pc              pkg-config --cflags --libs resnet
# Every file is relocatable: the prefix can move after installation.

include(CMakePackageConfigHelpers)
set(RESNET_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/resnet)

install(TARGETS resnet RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS resnet_lib EXPORT resnetStaticTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS resnet_shared EXPORT resnetSharedTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY include/resnet DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h"
        PATTERN "ref" EXCLUDE                 # the test oracle's kernels
        PATTERN "reference_run.h" EXCLUDE)    # and its graph interpreter

install(EXPORT resnetStaticTargets NAMESPACE resnet:: DESTINATION ${RESNET_CMAKE_DIR})
install(EXPORT resnetSharedTargets NAMESPACE resnet:: DESTINATION ${RESNET_CMAKE_DIR})
configure_package_config_file(cmake/resnetConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/resnetConfig.cmake INSTALL_DESTINATION ${RESNET_CMAKE_DIR})
# 0.x: a minor release may change the API.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/resnetConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/resnetConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/resnetConfigVersion.cmake
        DESTINATION ${RESNET_CMAKE_DIR})

# pkg-config: the prefix is found from the .pc file's own place (${pcfiledir}), so the
# file is right under any --prefix. Libs.private and Requires.private are what a static
# link (pkg-config --static) adds; oneDNN, ONNX and OpenMP ship no .pc file on Debian.
file(RELATIVE_PATH RESNET_PC_TO_PREFIX
     /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
string(REGEX REPLACE "/$" "" RESNET_PC_TO_PREFIX "${RESNET_PC_TO_PREFIX}")
set(RESNET_PC_LIBS_PRIVATE "-ldnnl -lonnx_proto")
foreach(name ${OpenMP_CXX_LIB_NAMES})
  string(APPEND RESNET_PC_LIBS_PRIVATE " -l${name}")
endforeach()
configure_file(cmake/resnet.pc.in ${CMAKE_CURRENT_BINARY_DIR}/resnet.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/resnet.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
