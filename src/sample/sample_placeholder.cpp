// placeholder so the library has a translation unit; removed once real sources land.
