# Runs the device described by device.json (in the current directory) forever.
import ll.app

ll.app.main("device.json")
