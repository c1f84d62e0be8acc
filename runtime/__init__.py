"""What every pingjia process runs on, below both the terminal and the hub: it imports only
`protocol`, and neither `device` nor `hub` imports the other."""
