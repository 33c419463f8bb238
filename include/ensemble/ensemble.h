/* ensemble.h — the whole plugin ABI in one include. */
#pragma once

#include <ensemble/ens-plugin.h>
#include <ensemble/ens-message.h>
#include <ensemble/ens-host.h>
#include <ensemble/ens-transport.h>
