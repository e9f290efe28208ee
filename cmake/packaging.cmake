# `cpack -G DEB` (from the build directory) makes resnet_VERSION_ARCH.deb: the command
# line, both libraries, the headers, the CMake package and the pkg-config file, under
# /usr. Depends is computed from the binaries (dpkg-shlibdeps); a static link or a
# find_package(resnet) with resnet_USE_STATIC_LIBS also needs the -dev packages listed in
# Suggests.

set(CPACK_PACKAGE_NAME resnet)
set(CPACK_PACKAGE_VENDOR resnet)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_CONTACT "resnet maintainers <resnet@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# A shlibs file and the ldconfig trigger for libresnet.so.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_SUGGESTS
    "libdnnl-dev, libonnx-dev, libprotobuf-dev, libpng-dev, libjpeg-dev, zlib1g-dev, libssl-dev")
set(CPACK_GENERATOR DEB)
include(CPack)
