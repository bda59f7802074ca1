"""The aggregator's library: records, statistics, text reports and plots of grid results."""
