/* ens-http-routes-seeds.c — the KSI HTTP plan, Neolith and Rhetor routes. */
#include "ens-http.h"

const EnsHttpRoute ens_http_routes_seeds[] = {
  { NULL },
};
