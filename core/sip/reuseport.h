/**
 * @file reuseport.h  Listening sockets shared by the worker processes
 */

void reuseport_set(bool on);
