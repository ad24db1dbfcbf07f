// placeholder until the file_sink helper lands
